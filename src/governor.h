/*-------------------------------------------------------------------------
 * governor.h
 *		The shared-memory governor: every backend together inside one
 *		Marketo instance's limits (rate window, calls in flight, daily
 *		quota, bulk jobs), Marketo's back-off signals, and shared tokens.
 *-------------------------------------------------------------------------
 */
#ifndef MARKETO_GOVERNOR_H
#define MARKETO_GOVERNOR_H

#include "postgres.h"
#include "datatype/timestamp.h"

#include "options.h"

/* How Marketo answered a call, as far as its limits are concerned. */
typedef enum GovernorOutcome
{
	GOV_COUNTED,				/* answered; counts against rate and quota */
	GOV_NOT_COUNTED,			/* 601/602/604/605/608/611, or no answer */
	GOV_RATE_LIMITED,			/* 606: every backend of the instance backs off */
	GOV_CONCURRENCY_LIMITED,	/* 615: likewise */
	GOV_QUOTA_EXHAUSTED			/* 607: nobody calls until the reset */
} GovernorOutcome;

/* A call in progress: the slot it holds. */
typedef struct GovernorCall
{
	int			instance;		/* index of the instance's shared state */
	int			slot;			/* concurrency slot held, -1 if none */
	bool		active;
} GovernorCall;

/* _PG_init: request shared memory and install hooks when preloading. */
extern void governor_init(void);

/*
 * Wait until the instance may take one more call (rate window, slots in
 * flight, shared cool-down), then take a slot.  Interruptible; raises an
 * error when the daily quota is used up or the library was not preloaded.
 * Never returns holding a lock.
 */
extern void governor_begin_call(const MarketoConn *conn, GovernorCall *call);

/* Release the slot and record the outcome.  Safe to call twice. */
extern void governor_end_call(GovernorCall *call, GovernorOutcome outcome);

/* A call is about to be repeated (counted in marketo_fdw_status). */
extern void governor_note_retry(const MarketoConn *conn);

/*
 * Sleep before retry number attempt (0-based) of a call that failed in a
 * way only this call saw (604/608/611/5xx): bounded exponential backoff
 * with jitter, interruptible.
 */
extern void governor_backoff(const MarketoConn *conn, int attempt);

/*
 * Access tokens, shared per (instance, client id).  governor_token_get
 * returns true and copies a token valid for a while yet; or returns false,
 * and then the caller is the one backend fetching a token and must call
 * governor_token_put or governor_token_abandon.  While another backend is
 * fetching, it waits (interruptibly).
 */
extern bool governor_token_get(const MarketoConn *conn, char *token,
							   size_t tokenlen);
extern void governor_token_put(const MarketoConn *conn, const char *token,
							   TimestampTz expires_at);
extern void governor_token_abandon(const MarketoConn *conn);
/* Marketo said 601/602 for this token: never hand it out again. */
extern void governor_token_forget(const MarketoConn *conn, const char *token);

/*
 * Bulk extract accounting, for the bulk issues: at most 2 jobs processing
 * and 10 queued per instance, and bulk_export_mb megabytes a day.
 */
extern bool governor_bulk_enqueue(const MarketoConn *conn);
extern bool governor_bulk_start(const MarketoConn *conn);
extern void governor_bulk_finish(const MarketoConn *conn, bool was_processing);
extern bool governor_bulk_add_mb(const MarketoConn *conn, double mb);

/* When the current Chicago day ends (the daily quota resets). */
extern TimestampTz governor_quota_reset_time(void);

/* ERROR unless the library was preloaded (the governor is in shared memory). */
extern void governor_require_preload(void);

#endif							/* MARKETO_GOVERNOR_H */
