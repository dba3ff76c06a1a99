/*-------------------------------------------------------------------------
 * marketo_fdw.c
 *		Entry points: module load, GUCs, the FDW handler and validator.
 *-------------------------------------------------------------------------
 */
#include "marketo_fdw.h"

#include "fmgr.h"
#include "foreign/fdwapi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "access/reloptions.h"

#include "governor.h"
#include "http.h"
#include "import.h"
#include "options.h"
#include "plan.h"
#include "scan.h"

PG_MODULE_MAGIC;

int			marketo_rate_window_ms = 20000;
int			marketo_bulk_poll_interval_ms = 60000;
int			marketo_max_calls_per_statement = 0;
int			marketo_max_retries = 5;

PG_FUNCTION_INFO_V1(marketo_fdw_handler);
PG_FUNCTION_INFO_V1(marketo_fdw_validator);

void		_PG_init(void);

static void
define_gucs(void)
{
	DefineCustomIntVariable("marketo_fdw.rate_window",
							"Length of Marketo's rate window.",
							"Marketo allows a number of calls per window of this length; tests shorten it. One value for the whole server: every backend shares the window.",
							&marketo_rate_window_ms,
							20000, 100, 3600 * 1000,
							PGC_SIGHUP, GUC_UNIT_MS,
							NULL, NULL, NULL);
	DefineCustomIntVariable("marketo_fdw.bulk_poll_interval",
							"How often a bulk job's status is polled.",
							NULL,
							&marketo_bulk_poll_interval_ms,
							60000, 100, 3600 * 1000,
							PGC_SUSET, GUC_UNIT_MS,
							NULL, NULL, NULL);
	DefineCustomIntVariable("marketo_fdw.max_calls_per_statement",
							"Most Marketo API calls one statement may spend (0: no limit).",
							NULL,
							&marketo_max_calls_per_statement,
							0, 0, INT_MAX,
							PGC_USERSET, 0,
							NULL, NULL, NULL);
	DefineCustomIntVariable("marketo_fdw.max_retries",
							"Retries of one Marketo call after a throttling or transient error.",
							NULL,
							&marketo_max_retries,
							5, 0, 100,
							PGC_USERSET, 0,
							NULL, NULL, NULL);
#if PG_VERSION_NUM >= 150000
	MarkGUCPrefixReserved("marketo_fdw");
#else
	EmitWarningsOnPlaceholders("marketo_fdw");
#endif
}

void
_PG_init(void)
{
	define_gucs();
	governor_init();
	http_init();
}

Datum
marketo_fdw_handler(PG_FUNCTION_ARGS)
{
	FdwRoutine *routine = makeNode(FdwRoutine);

	routine->GetForeignRelSize = marketoGetForeignRelSize;
	routine->GetForeignPaths = marketoGetForeignPaths;
	routine->GetForeignPlan = marketoGetForeignPlan;
	routine->ExplainForeignScan = marketoExplainForeignScan;
	routine->BeginForeignScan = marketoBeginForeignScan;
	routine->IterateForeignScan = marketoIterateForeignScan;
	routine->ReScanForeignScan = marketoReScanForeignScan;
	routine->EndForeignScan = marketoEndForeignScan;
	routine->ImportForeignSchema = marketoImportForeignSchema;

	PG_RETURN_POINTER(routine);
}

Datum
marketo_fdw_validator(PG_FUNCTION_ARGS)
{
	List	   *options = untransformRelOptions(PG_GETARG_DATUM(0));
	Oid			catalog = PG_GETARG_OID(1);

	marketo_validate_options(options, catalog);
	PG_RETURN_VOID();
}
