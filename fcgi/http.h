/*
 * http.h - the two ways a request reaches ee-api: a FastCGI request from
 * libfcgi, or a CGI invocation (environment and stdin).  Both fill the same
 * struct api_request and write the same struct api_response.
 */
#ifndef EE_HTTP_H
#define EE_HTTP_H

#include <fcgiapp.h>

#include "api.h"

/* Reads the parameters and body of a FastCGI request. */
void http_read_fcgi(FCGX_Request *fcgi, struct api_request *req, size_t max_body);
/* Reads a CGI request from the environment and stdin. */
void http_read_cgi(struct api_request *req, size_t max_body);

void http_write_fcgi(FCGX_Request *fcgi, const struct api_request *req,
                     const struct api_response *res);
void http_write_cgi(const struct api_request *req, const struct api_response *res);

void http_request_free(struct api_request *req);
void http_response_init(struct api_response *res);
void http_response_reset(struct api_response *res);
void http_response_free(struct api_response *res);

#endif
