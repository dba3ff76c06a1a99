--
-- IMPORT FOREIGN SCHEMA: tables and columns from the instance's describe.
--
SELECT mock_reset();
CREATE SCHEMA imported;
IMPORT FOREIGN SCHEMA marketo FROM SERVER mkto INTO imported;
SELECT data_calls('GET /rest/v1/leads/describe2.json') AS describe_calls;
\d imported.leads
-- the imported table reads every type
SELECT id, first_name, segment, pct_complete, annual_revenue, is_vip, birth_date,
       created_at, interests, formula_score
  FROM imported.leads WHERE id = 4;
-- LIMIT TO and EXCEPT take object names; nothing to import costs no call
SELECT mock_reset();
CREATE SCHEMA imported2;
IMPORT FOREIGN SCHEMA marketo LIMIT TO (activities_of_2030) FROM SERVER mkto INTO imported2;
IMPORT FOREIGN SCHEMA marketo EXCEPT (leads) FROM SERVER mkto INTO imported2;
SELECT count(*) AS tables FROM pg_foreign_table ft JOIN pg_class c ON c.oid = ft.ftrelid
 WHERE c.relnamespace = 'imported2'::regnamespace;
SELECT count(*) AS calls FROM mock_log();
IMPORT FOREIGN SCHEMA crm FROM SERVER mkto INTO imported2;
DROP SCHEMA imported, imported2 CASCADE;
