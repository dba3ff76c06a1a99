--
-- Option validation: unknown names, bad values, misplaced secrets.
--
-- base_url is required, must be http(s), and plain http only for loopback
CREATE SERVER bad FOREIGN DATA WRAPPER marketo_fdw;
CREATE SERVER bad FOREIGN DATA WRAPPER marketo_fdw OPTIONS (base_url 'ftp://x.mktorest.com');
CREATE SERVER bad FOREIGN DATA WRAPPER marketo_fdw OPTIONS (base_url 'http://123-ABC-456.mktorest.com');
CREATE SERVER bad FOREIGN DATA WRAPPER marketo_fdw OPTIONS (base_url 'http://127.attacker.example');
CREATE SERVER bad FOREIGN DATA WRAPPER marketo_fdw OPTIONS (base_url 'https://123-ABC-456.mktorest.com/rest/v1');
CREATE SERVER bad FOREIGN DATA WRAPPER marketo_fdw OPTIONS (base_url 'https://user@123-ABC-456.mktorest.com');
-- a trailing /rest or / is accepted
CREATE SERVER good FOREIGN DATA WRAPPER marketo_fdw OPTIONS (base_url 'https://123-ABC-456.mktorest.com/rest/');
-- numeric ranges
ALTER SERVER good OPTIONS (ADD rate_limit '0');
ALTER SERVER good OPTIONS (ADD rate_limit '101');
ALTER SERVER good OPTIONS (ADD rate_limit 'fifty');
ALTER SERVER good OPTIONS (ADD max_concurrency '11');
ALTER SERVER good OPTIONS (ADD daily_quota '-5');
ALTER SERVER good OPTIONS (ADD request_timeout '30', ADD rate_limit '100', ADD max_concurrency '10');
-- unknown options name the valid ones; secrets belong in user mappings only
ALTER SERVER good OPTIONS (ADD ratelimit '5');
ALTER SERVER good OPTIONS (ADD client_secret 'hunter2');
CREATE USER MAPPING FOR CURRENT_USER SERVER good OPTIONS (client_id 'abc');
CREATE USER MAPPING FOR CURRENT_USER SERVER good OPTIONS (client_id 'abc', client_secret 'hunter2', base_url 'x');
CREATE USER MAPPING FOR CURRENT_USER SERVER good OPTIONS (client_id 'abc', client_secret 'hunter2');
-- tables: object is required and must be known; write options only on leads
CREATE FOREIGN TABLE t1 (id int) SERVER good;
CREATE FOREIGN TABLE t1 (id int) SERVER good OPTIONS (object 'contacts');
CREATE FOREIGN TABLE t1 (id int) SERVER good OPTIONS (object 'leads', write_mode 'sometimes');
CREATE FOREIGN TABLE t1 (id int) SERVER good OPTIONS (object 'leads', action 'upsert');
CREATE FOREIGN TABLE t1 (id int) SERVER good OPTIONS (object 'leads', cache_ttl 'soon');
CREATE FOREIGN TABLE t1 (id int OPTIONS (column 'id')) SERVER good OPTIONS (object 'leads');
CREATE FOREIGN TABLE t1 (id int OPTIONS (field '')) SERVER good OPTIONS (object 'leads');
CREATE FOREIGN TABLE t1 (id int OPTIONS (field 'id'))
  SERVER good OPTIONS (object 'leads', write_mode 'bulk', lookup_field 'id',
                       action 'updateOnly', on_record_error 'warning', cache_ttl '0');
-- only superusers may point TLS at another CA bundle
CREATE ROLE regress_marketo_user;
GRANT USAGE ON FOREIGN DATA WRAPPER marketo_fdw TO regress_marketo_user;
SET ROLE regress_marketo_user;
CREATE SERVER mine FOREIGN DATA WRAPPER marketo_fdw
  OPTIONS (base_url 'https://123-ABC-456.mktorest.com', ca_file '/tmp/ca.pem');
-- nor at a host that is not Marketo's (no request forgery through the backend)
CREATE SERVER mine FOREIGN DATA WRAPPER marketo_fdw
  OPTIONS (base_url 'https://intranet.example.com');
CREATE SERVER mine FOREIGN DATA WRAPPER marketo_fdw
  OPTIONS (base_url 'https://123-ABC-456.mktorest.com.evil.example');
CREATE SERVER mine FOREIGN DATA WRAPPER marketo_fdw
  OPTIONS (base_url 'https://123-ABC-456.mktorest.com');
ALTER SERVER mine OPTIONS (SET base_url 'https://10.0.0.1');
CREATE USER MAPPING FOR CURRENT_USER SERVER mine
  OPTIONS (client_id 'abc', client_secret 'hunter2');
RESET ROLE;
-- a server a superuser pointed at a loopback mock is usable by others
GRANT USAGE ON FOREIGN SERVER mkto TO regress_marketo_user;
CREATE USER MAPPING FOR regress_marketo_user SERVER mkto
  OPTIONS (client_id 'mock-client', client_secret 'mock-secret');
GRANT USAGE ON SCHEMA mkto TO regress_marketo_user;
GRANT SELECT ON mkto.leads TO regress_marketo_user;
SET ROLE regress_marketo_user;
SELECT id, email FROM mkto.leads WHERE id = 1;
RESET ROLE;
-- the secret is hidden from other users, as for every user mapping
SET ROLE regress_marketo_user;
SELECT srvname, umoptions FROM pg_user_mappings WHERE srvname = 'good';
RESET ROLE;
DROP SERVER mine CASCADE;
DROP USER MAPPING FOR regress_marketo_user SERVER mkto;
REVOKE ALL ON SCHEMA mkto FROM regress_marketo_user;
REVOKE ALL ON mkto.leads FROM regress_marketo_user;
REVOKE ALL ON FOREIGN SERVER mkto FROM regress_marketo_user;
DROP OWNED BY regress_marketo_user;
DROP ROLE regress_marketo_user;
DROP SERVER good CASCADE;
