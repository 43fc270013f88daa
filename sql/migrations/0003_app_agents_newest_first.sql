-- 0003_app_agents_newest_first.sql - an app's agents in the order the
-- registry reads them (newest registration first, then agent id), so that
-- resolve and the app listing read them from the index instead of sorting
-- them on every request.  It replaces the index on app_name alone, which
-- is its prefix.
CREATE INDEX app_agents_by_app_newest ON app_agents (app_name, registered_at DESC, agent_id);
DROP INDEX app_agents_by_app;
