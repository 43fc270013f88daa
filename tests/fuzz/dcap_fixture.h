/*
 * dcap_fixture.h - a synthetic DCAP hierarchy for the fuzz targets: a test
 * root CA (not Intel's) and collateral signed under it (PCK platform CA, a
 * TCB signing certificate, both CRLs, TCB info for FMSPC 00906ED50000 and
 * a TD QE identity), valid from 2025-01-01 to 2035-01-01.  The seed corpus
 * of fuzz_quote holds quotes whose PCK chain ends at this root, so that
 * mutations reach every step of verification.  Made with Python's
 * cryptography package; nothing here comes from shared/testdata.  The
 * unit tests use it too (test_dcap_synthetic.c), with the CRL variants
 * and the signing key at the end.
 */
#ifndef EE_DCAP_FIXTURE_H
#define EE_DCAP_FIXTURE_H

/* 2026-01-01T00:00:00Z: inside every window of the fixture. */
#define DCAP_FIXTURE_TIME 1767225600

static const char dcap_fixture_root_pem[] =
	"-----BEGIN CERTIFICATE-----\n"
	"MIIBazCCARKgAwIBAgIBATAKBggqhkjOPQQDAjA1MRgwFgYDVQQDDA9FRSBUZXN0\n"
	"IFJvb3QgQ0ExGTAXBgNVBAoMEGVhc3llbmNsYXZlIHRlc3QwHhcNMjAwMTAxMDAw\n"
	"MDAwWhcNNDUwMTAxMDAwMDAwWjA1MRgwFgYDVQQDDA9FRSBUZXN0IFJvb3QgQ0Ex\n"
	"GTAXBgNVBAoMEGVhc3llbmNsYXZlIHRlc3QwWTATBgcqhkjOPQIBBggqhkjOPQMB\n"
	"BwNCAASoivBGCqbh+5R/pXp4z/YTKt453VPRCIoSD9DEkSugsaz6QnNbCNHXillj\n"
	"ur+E1S9622z51IQLwLg7ECUZIjZ2oxMwETAPBgNVHRMBAf8EBTADAQH/MAoGCCqG\n"
	"SM49BAMCA0cAMEQCIEYYflOsUicPuJlECoSuRXPSNixG+ow9N+i88RF8oOpgAiA9\n"
	"jzt7nGe869orXmy4hmKdiZiB0Mxg4/Yg+N4T1oxL5w==\n"
	"-----END CERTIFICATE-----\n";

static const char dcap_fixture_collateral_json[] =
	"{\n"
	" \"pck_crl_issuer_chain\": \"-----BEGIN CERTIFICATE-----\\nMIIBdTCCARqgAwIBAgIBAjAKBggqhkjOPQQDAjA1MRgwFgYDVQQDDA9FRSBUZXN0\\nIFJvb3QgQ0ExGTAXBgNVBAoMEGVhc3llbmNsYXZlIHRlc3QwHhcNMjAwMTAxMDAw\\nMDAwWhcNNDUwMTAxMDAwMDAwWjA9MSAwHgYDVQQDDBdFRSBUZXN0IFBDSyBQbGF0\\nZm9ybSBDQTEZMBcGA1UECgwQZWFzeWVuY2xhdmUgdGVzdDBZMBMGByqGSM49AgEG\\nCCqGSM49AwEHA0IABJVWXfMV5unnkRwA6PT3zkxI1qxpcIN2pWymD7f7csBfcAjH\\nEAVOVGsVRrFTaAVOR85Ah4IXe6AlvaQt6jYacFSjEzARMA8GA1UdEwEB/wQFMAMB\\nAf8wCgYIKoZIzj0EAwIDSQAwRgIhAJIc9y97MTqlPBhYWBFiWdOWDBP5lucPbkO4\\n9CGYYNOdAiEA5AunrE3BpcznFjm4H8Sqi1twPVw57KDc1ona9krPd84=\\n-----END CERTIFICATE-----\\n-----BEGIN CERTIFICATE-----\\nMIIBazCCARKgAwIBAgIBATAKBggqhkjOPQQDAjA1MRgwFgYDVQQDDA9FRSBUZXN0\\nIFJvb3QgQ0ExGTAXBgNVBAoMEGVhc3llbmNsYXZlIHRlc3QwHhcNMjAwMTAxMDAw\\nMDAwWhcNNDUwMTAxMDAwMDAwWjA1MRgwFgYDVQQDDA9FRSBUZXN0IFJvb3QgQ0Ex\\nGTAXBgNVBAoMEGVhc3llbmNsYXZlIHRlc3QwWTATBgcqhkjOPQIBBggqhkjOPQMB\\nBwNCAASoivBGCqbh+5R/pXp4z/YTKt453VPRCIoSD9DEkSugsaz6QnNbCNHXillj\\nur+E1S9622z51IQLwLg7ECUZIjZ2oxMwETAPBgNVHRMBAf8EBTADAQH/MAoGCCqG\\nSM49BAMCA0cAMEQCIEYYflOsUicPuJlECoSuRXPSNixG+ow9N+i88RF8oOpgAiA9\\njzt7nGe869orXmy4hmKdiZiB0Mxg4/Yg+N4T1oxL5w==\\n-----END CERTIFICATE-----\\n\",\n"
	" \"root_ca_crl\": \"3081d2307a020101300a06082a8648ce3d04030230353118301606035504030c0f4545205465737420526f6f7420434131193017060355040a0c1065617379656e636c6176652074657374170d3235303130313030303030305a170d3335303130313030303030305a30143012020163170d3234303130313030303030305a300a06082a8648ce3d0403020348003045022100a1e6ec9c20dc42d099e6eb2930eff3f8cfcca3f7d64247922a122fe89327679e0220452c19c4142bcade35d9a9114feeda5a316691a7704db041c2e9a9fd2f88f685\",\n"
	" \"pck_crl\": \"3081f1308198020101300a06082a8648ce3d040302303d3120301e06035504030c17454520546573742050434b20506c6174666f726d20434131193017060355040a0c1065617379656e636c6176652074657374170d3235303130313030303030305a170d3335303130313030303030305a302a301302020777170d3234303130313030303030305a301302020888170d3234303130313030303030305a300a06082a8648ce3d0403020348003045022100ff198c38041fe882e65262babb4b2b1442207776b41b17efde59860b7e579748022056d6c48c28541623b1e9c3f5989810a9a3034c6e961656aa5677cedbe66424be\",\n"
	" \"tcb_info_issuer_chain\": \"-----BEGIN CERTIFICATE-----\\nMIIBbjCCAROgAwIBAgIBAzAKBggqhkjOPQQDAjA1MRgwFgYDVQQDDA9FRSBUZXN0\\nIFJvb3QgQ0ExGTAXBgNVBAoMEGVhc3llbmNsYXZlIHRlc3QwHhcNMjAwMTAxMDAw\\nMDAwWhcNNDUwMTAxMDAwMDAwWjA5MRwwGgYDVQQDDBNFRSBUZXN0IFRDQiBTaWdu\\naW5nMRkwFwYDVQQKDBBlYXN5ZW5jbGF2ZSB0ZXN0MFkwEwYHKoZIzj0CAQYIKoZI\\nzj0DAQcDQgAEOQREBFlHN+e2GvWammDbAxGQTY6FmZjKPAVLMcr20Vnq7D5YEqfK\\nSHDpbmTRLRzpgohjBw8b1UhhKeoBMFXrgKMQMA4wDAYDVR0TAQH/BAIwADAKBggq\\nhkjOPQQDAgNJADBGAiEA1jEjxfN9DHaO0BaxmjBHasOK1h8w8VsK5HEDDapCTzgC\\nIQC/yr1rSlhLqVHO50yl8MDRC8z1dEXkPCo8cAecvNQ5GQ==\\n-----END CERTIFICATE-----\\n-----BEGIN CERTIFICATE-----\\nMIIBazCCARKgAwIBAgIBATAKBggqhkjOPQQDAjA1MRgwFgYDVQQDDA9FRSBUZXN0\\nIFJvb3QgQ0ExGTAXBgNVBAoMEGVhc3llbmNsYXZlIHRlc3QwHhcNMjAwMTAxMDAw\\nMDAwWhcNNDUwMTAxMDAwMDAwWjA1MRgwFgYDVQQDDA9FRSBUZXN0IFJvb3QgQ0Ex\\nGTAXBgNVBAoMEGVhc3llbmNsYXZlIHRlc3QwWTATBgcqhkjOPQIBBggqhkjOPQMB\\nBwNCAASoivBGCqbh+5R/pXp4z/YTKt453VPRCIoSD9DEkSugsaz6QnNbCNHXillj\\nur+E1S9622z51IQLwLg7ECUZIjZ2oxMwETAPBgNVHRMBAf8EBTADAQH/MAoGCCqG\\nSM49BAMCA0cAMEQCIEYYflOsUicPuJlECoSuRXPSNixG+ow9N+i88RF8oOpgAiA9\\njzt7nGe869orXmy4hmKdiZiB0Mxg4/Yg+N4T1oxL5w==\\n-----END CERTIFICATE-----\\n\",\n"
	" \"tcb_info\": \"{\\\"id\\\":\\\"TDX\\\",\\\"version\\\":3,\\\"issueDate\\\":\\\"2025-01-01T00:00:00Z\\\",\\\"nextUpdate\\\":\\\"2035-01-01T00:00:00Z\\\",\\\"fmspc\\\":\\\"00906ED50000\\\",\\\"pceId\\\":\\\"0000\\\",\\\"tcbType\\\":0,\\\"tcbEvaluationDataNumber\\\":17,\\\"tdxModule\\\":{\\\"mrsigner\\\":\\\"000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000\\\",\\\"attributes\\\":\\\"0000000000000000\\\",\\\"attributesMask\\\":\\\"FFFFFFFFFFFFFFFF\\\"},\\\"tdxModuleIdentities\\\":[{\\\"id\\\":\\\"TDX_01\\\",\\\"mrsigner\\\":\\\"000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000\\\",\\\"attributes\\\":\\\"0000000000000000\\\",\\\"attributesMask\\\":\\\"FFFFFFFFFFFFFFFF\\\",\\\"tcbLevels\\\":[{\\\"tcb\\\":{\\\"isvsvn\\\":6},\\\"tcbDate\\\":\\\"2024-11-13T00:00:00Z\\\",\\\"tcbStatus\\\":\\\"UpToDate\\\"},{\\\"tcb\\\":{\\\"isvsvn\\\":4},\\\"tcbDate\\\":\\\"2024-03-13T00:00:00Z\\\",\\\"tcbStatus\\\":\\\"OutOfDate\\\",\\\"advisoryIDs\\\":[\\\"INTEL-SA-01036\\\"]}]}],\\\"tcbLevels\\\":[{\\\"tcb\\\":{\\\"sgxtcbcomponents\\\":[{\\\"svn\\\":3},{\\\"svn\\\":3},{\\\"svn\\\":2},{\\\"svn\\\":2},{\\\"svn\\\":4},{\\\"svn\\\":1},{\\\"svn\\\":0},{\\\"svn\\\":5},{\\\"svn\\\":0},{\\\"svn\\\":0},{\\\"svn\\\":0},{\\\"svn\\\":0},{\\\"svn\\\":0},{\\\"svn\\\":0},{\\\"svn\\\":0},{\\\"svn\\\":0}],\\\"pcesvn\\\":13,\\\"tdxtcbcomponents\\\":[{\\\"svn\\\":5},{\\\"svn\\\":0},{\\\"svn\\\":3},{\\\"svn\\\":0},{\\\"svn\\\":0},{\\\"svn\\\":0},{\\\"svn\\\":0},{\\\"svn\\\":0},{\\\"svn\\\":0},{\\\"svn\\\":0},{\\\"svn\\\":0},{\\\"svn\\\":0},{\\\"svn\\\":0},{\\\"svn\\\":0},{\\\"svn\\\":0},{\\\"svn\\\":0}]},\\\"tcbDate\\\":\\\"2024-11-13T00:00:00Z\\\",\\\"tcbStatus\\\":\\\"UpToDate\\\"},{\\\"tcb\\\":{\\\"sgxtcbcomponents\\\":[{\\\"svn\\\":2},{\\\"svn\\\":2},{\\\"svn\\\":2},{\\\"svn\\\":2},{\\\"svn\\\":3},{\\\"svn\\\":1},{\\\"svn\\\":0},{\\\"svn\\\":5},{\\\"svn\\\":0},{\\\"svn\\\":0},{\\\"svn\\\":0},{\\\"svn\\\":0},{\\\"svn\\\":0},{\\\"svn\\\":0},{\\\"svn\\\":0},{\\\"svn\\\":0}],\\\"pcesvn\\\":5,\\\"tdxtcbcomponents\\\":[{\\\"svn\\\":5},{\\\"svn\\\":0},{\\\"svn\\\":2},{\\\"svn\\\":0},{\\\"svn\\\":0},{\\\"svn\\\":0},{\\\"svn\\\":0},{\\\"svn\\\":0},{\\\"svn\\\":0},{\\\"svn\\\":0},{\\\"svn\\\":0},{\\\"svn\\\":0},{\\\"svn\\\":0},{\\\"svn\\\":0},{\\\"svn\\\":0},{\\\"svn\\\":0}]},\\\"tcbDate\\\":\\\"2018-01-04T00:00:00Z\\\",\\\"tcbStatus\\\":\\\"OutOfDate\\\",\\\"advisoryIDs\\\":[\\\"INTEL-SA-00106\\\",\\\"INTEL-SA-00115\\\"]}]}\",\n"
	" \"tcb_info_signature\": \"018dd35df2466618f5a63dddb8626b792fee178a7115f3f07e21324cf1d079ff3c1c5c9543ef245d16b0931aeb29cecf436d56035e51f54113b531294accff53\",\n"
	" \"qe_identity_issuer_chain\": \"-----BEGIN CERTIFICATE-----\\nMIIBbjCCAROgAwIBAgIBAzAKBggqhkjOPQQDAjA1MRgwFgYDVQQDDA9FRSBUZXN0\\nIFJvb3QgQ0ExGTAXBgNVBAoMEGVhc3llbmNsYXZlIHRlc3QwHhcNMjAwMTAxMDAw\\nMDAwWhcNNDUwMTAxMDAwMDAwWjA5MRwwGgYDVQQDDBNFRSBUZXN0IFRDQiBTaWdu\\naW5nMRkwFwYDVQQKDBBlYXN5ZW5jbGF2ZSB0ZXN0MFkwEwYHKoZIzj0CAQYIKoZI\\nzj0DAQcDQgAEOQREBFlHN+e2GvWammDbAxGQTY6FmZjKPAVLMcr20Vnq7D5YEqfK\\nSHDpbmTRLRzpgohjBw8b1UhhKeoBMFXrgKMQMA4wDAYDVR0TAQH/BAIwADAKBggq\\nhkjOPQQDAgNJADBGAiEA1jEjxfN9DHaO0BaxmjBHasOK1h8w8VsK5HEDDapCTzgC\\nIQC/yr1rSlhLqVHO50yl8MDRC8z1dEXkPCo8cAecvNQ5GQ==\\n-----END CERTIFICATE-----\\n-----BEGIN CERTIFICATE-----\\nMIIBazCCARKgAwIBAgIBATAKBggqhkjOPQQDAjA1MRgwFgYDVQQDDA9FRSBUZXN0\\nIFJvb3QgQ0ExGTAXBgNVBAoMEGVhc3llbmNsYXZlIHRlc3QwHhcNMjAwMTAxMDAw\\nMDAwWhcNNDUwMTAxMDAwMDAwWjA1MRgwFgYDVQQDDA9FRSBUZXN0IFJvb3QgQ0Ex\\nGTAXBgNVBAoMEGVhc3llbmNsYXZlIHRlc3QwWTATBgcqhkjOPQIBBggqhkjOPQMB\\nBwNCAASoivBGCqbh+5R/pXp4z/YTKt453VPRCIoSD9DEkSugsaz6QnNbCNHXillj\\nur+E1S9622z51IQLwLg7ECUZIjZ2oxMwETAPBgNVHRMBAf8EBTADAQH/MAoGCCqG\\nSM49BAMCA0cAMEQCIEYYflOsUicPuJlECoSuRXPSNixG+ow9N+i88RF8oOpgAiA9\\njzt7nGe869orXmy4hmKdiZiB0Mxg4/Yg+N4T1oxL5w==\\n-----END CERTIFICATE-----\\n\",\n"
	" \"qe_identity\": \"{\\\"id\\\":\\\"TD_QE\\\",\\\"version\\\":2,\\\"issueDate\\\":\\\"2025-01-01T00:00:00Z\\\",\\\"nextUpdate\\\":\\\"2035-01-01T00:00:00Z\\\",\\\"tcbEvaluationDataNumber\\\":17,\\\"miscselect\\\":\\\"00000000\\\",\\\"miscselectMask\\\":\\\"FFFFFFFF\\\",\\\"attributes\\\":\\\"11000000000000000000000000000000\\\",\\\"attributesMask\\\":\\\"FBFFFFFFFFFFFFFF0000000000000000\\\",\\\"mrsigner\\\":\\\"DCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDC\\\",\\\"isvprodid\\\":2,\\\"tcbLevels\\\":[{\\\"tcb\\\":{\\\"isvsvn\\\":4},\\\"tcbDate\\\":\\\"2024-03-13T00:00:00Z\\\",\\\"tcbStatus\\\":\\\"UpToDate\\\"}]}\",\n"
	" \"qe_identity_signature\": \"df401d09991849909ff4d2f7bd1dea846f21a27a83d89cb2039f7233f7180733bc92c1cf7f933f014f806b763f8ddc117ab25b824b6ce113e71940be865226b8\"\n"
	"}";

/* The TCB signing key, so that tests can sign TCB info and QE identity variants. */
static const char dcap_fixture_signing_key_pem[] =
	"-----BEGIN PRIVATE KEY-----\n"
	"MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgve/CWUJr0IbREmEI\n"
	"rDlVpsFRZMofWR4Icux8SeRALmuhRANCAAQ5BEQEWUc357Ya9ZqaYNsDEZBNjoWZ\n"
	"mMo8BUsxyvbRWersPlgSp8pIcOluZNEtHOmCiGMHDxvVSGEp6gEwVeuA\n"
	"-----END PRIVATE KEY-----\n";

static const char dcap_fixture_pck_crl_revoking_pck_hex[] =
	"3081f1308198020101300a06082a8648ce3d040302303d3120301e06035504030c17454520546573742050434b20506c6174666f726d20434131193017060355040a0c1065617379656e636c6176652074657374170d3235303130313030303030305a170d3335303130313030303030305a302a301302020777170d3234303130313030303030305a301302021234170d3234303130313030303030305a300a06082a8648ce3d040302034800304502203ad8b733585e6162df3e55fcce5a3167b7135b4de6592f45e5176d438c8fa1a2022100f4b661bb59fff5da27e86812c534975bcc293c02d1b3bcaeeea01000bb6493b5";

static const char dcap_fixture_root_crl_revoking_ca_hex[] =
	"3081d1307a020101300a06082a8648ce3d04030230353118301606035504030c0f4545205465737420526f6f7420434131193017060355040a0c1065617379656e636c6176652074657374170d3235303130313030303030305a170d3335303130313030303030305a30143012020102170d3234303130313030303030305a300a06082a8648ce3d040302034700304402206c02653c35e3212438d4255a2fe83b7377864f4a49fbb2f470f07369bf57d31d02203eeb5ae08dc2eaefd25a6091ce04308bfc10b6c5339c483066820772e630fbc5";

static const char dcap_fixture_root_crl_revoking_signing_hex[] =
	"3081d3307a020101300a06082a8648ce3d04030230353118301606035504030c0f4545205465737420526f6f7420434131193017060355040a0c1065617379656e636c6176652074657374170d3235303130313030303030305a170d3335303130313030303030305a30143012020103170d3234303130313030303030305a300a06082a8648ce3d0403020349003046022100a7c618e62b1f3f8c4297903bc4ac11e6caa34f14cc3fb854e6d97218d2ab479a022100ceae326eaad04674f3e5bc914d251080472d5b3d54fb07b99447e1a91348cfbb";

#endif
