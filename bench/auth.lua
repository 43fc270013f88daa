-- bench/auth.lua - wrk script: GET with the admin token from the environment.
local token = os.getenv("EE_ADMIN_TOKEN")
wrk.headers["Authorization"] = "Bearer " .. token
