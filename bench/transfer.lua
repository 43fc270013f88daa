-- bench/transfer.lua - wrk script: 1-cent transfers back and forth between
-- two funded accounts, with the admin token from the environment.
local token = os.getenv("EE_ADMIN_TOKEN")
local n = 0
request = function()
	n = n + 1
	local from, to = "bench-a", "bench-b"
	if n % 2 == 0 then from, to = "bench-b", "bench-a" end
	local body = string.format('{"from_account":"%s","to_account":"%s","amount_usd":"0.01"}', from, to)
	return wrk.format("POST", "/v1/credits/transfer",
		{["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json"}, body)
end
