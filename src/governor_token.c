/*-------------------------------------------------------------------------
 *
 * governor_token.c
 *		Access tokens shared by every backend that calls an instance as the
 *		same API user.
 *
 * Marketo gives an API user (a client id) one token at a time and answers
 * every fetch with that token and its remaining lifetime until it expires,
 * so all backends can use the token any one of them fetched.  One backend
 * fetches at a time; the others wait for it, which spares identity calls
 * and keeps a crowd of backends from fetching at once.
 *
 * Entries are keyed by instance, client id and a SHA-256 digest of the
 * client secret: a user who knows only someone else's client id must not
 * get that user's token.  The secret itself is not kept.
 *
 * tokens->lock, an LWLock, is taken only to find or claim an entry; the
 * rest of an entry is under its spinlock.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/sha2.h"
#if PG_VERSION_NUM >= 140000
#include "common/cryptohash.h"
#endif
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/condition_variable.h"
#include "storage/procarray.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/timestamp.h"

#include "governor_internal.h"
#include "marketo_fdw.h"
#include "progress.h"

#define TOKEN_ENTRIES			64
#define TOKEN_CLIENT_ID_LEN		128
#define TOKEN_LEN				256

/* See token_usable() */
#define TOKEN_MARGIN_MS			60000
#define TOKEN_SHORT_LIFETIME_MS	120000
#define TOKEN_SHORT_MARGIN_MS	5000

/* How often a waiter checks that the backend fetching is still alive */
#define TOKEN_RECHECK_MS		1000

#if PG_VERSION_NUM >= 150000
#define sha256_final(ctx, digest) \
	pg_cryptohash_final(ctx, digest, PG_SHA256_DIGEST_LENGTH)
#else
#define sha256_final(ctx, digest)	pg_cryptohash_final(ctx, digest)
#endif

typedef struct GovToken
{
	/*
	 * The key, set when the entry is claimed, under tokens->lock in exclusive
	 * mode and the mutex.  An entry holding no live token and no fetch may be
	 * claimed again for another key when the table is full; generation then
	 * changes, so a backend still holding the old index looks again rather
	 * than take another credential's token.
	 */
	char		instance[GOVERNOR_INSTANCE_LEN];
	char		client_id[TOKEN_CLIENT_ID_LEN];
	uint8		secret_digest[PG_SHA256_DIGEST_LENGTH];
	uint32		generation;

	slock_t		mutex;			/* protects all that follows */
	char		token[TOKEN_LEN];	/* "": none */
	TimestampTz issued_at;		/* when it was put here */
	TimestampTz expires_at;
	int			fetcher_pid;	/* 0: nobody is fetching */
	TimestampTz fetch_started;
} GovToken;

typedef struct GovTokens
{
	LWLock	   *lock;			/* claims entries */
	ConditionVariable cv;		/* broadcast when a fetch ends */
	int			nentries;
	GovToken	entries[TOKEN_ENTRIES];
} GovTokens;

typedef enum TokenVerdict
{
	TOKEN_COPIED,				/* a usable token was copied out */
	TOKEN_FETCH,				/* the caller is now the one fetching */
	TOKEN_WAIT,					/* another backend is fetching */
	TOKEN_RELOOKUP				/* the entry now belongs to another key */
} TokenVerdict;

static GovTokens *tokens = NULL;

/* The entries this backend is fetching a token for */
static bool fetching[TOKEN_ENTRIES];


Size
governor_token_shmem_size(void)
{
	return sizeof(GovTokens);
}

void
governor_token_shmem_init(LWLock *lock)
{
	bool		found;

	tokens = ShmemInitStruct("marketo_fdw tokens", sizeof(GovTokens), &found);
	if (found)
		return;

	memset(tokens, 0, sizeof(GovTokens));
	tokens->lock = lock;
	ConditionVariableInit(&tokens->cv);
	for (int i = 0; i < TOKEN_ENTRIES; i++)
		SpinLockInit(&tokens->entries[i].mutex);
}

static void
secret_digest(const char *secret, uint8 *digest)
{
#if PG_VERSION_NUM >= 140000
	pg_cryptohash_ctx *ctx = pg_cryptohash_create(PG_SHA256);

	if (pg_cryptohash_init(ctx) < 0 ||
		pg_cryptohash_update(ctx, (const uint8 *) secret, strlen(secret)) < 0 ||
		sha256_final(ctx, digest) < 0)
		elog(ERROR, "could not compute a SHA-256 digest");
	pg_cryptohash_free(ctx);
#else
	pg_sha256_ctx ctx;

	pg_sha256_init(&ctx);
	pg_sha256_update(&ctx, (const uint8 *) secret, strlen(secret));
	pg_sha256_final(&ctx, digest);
#endif
}

static int
find_entry(const MarketoConn *conn, const uint8 *digest)
{
	for (int i = 0; i < tokens->nentries; i++)
	{
		GovToken   *t = &tokens->entries[i];

		if (strcmp(t->instance, conn->instance) == 0 &&
			strcmp(t->client_id, conn->client_id) == 0 &&
			memcmp(t->secret_digest, digest, PG_SHA256_DIGEST_LENGTH) == 0)
			return i;
	}
	return -1;
}

/*
 * Under tokens->lock in exclusive mode, the table full: the entry that can
 * go to a new key (no fetch under way, no token still alive), the one idle
 * longest; -1 if none.
 */
static int
reusable_entry(TimestampTz now)
{
	int			best = -1;

	for (int i = 0; i < tokens->nentries; i++)
	{
		GovToken   *t = &tokens->entries[i];
		bool		idle;

		SpinLockAcquire(&t->mutex);
		idle = t->fetcher_pid == 0 && (t->token[0] == '\0' || t->expires_at <= now);
		SpinLockRelease(&t->mutex);
		if (idle && (best < 0 || t->expires_at < tokens->entries[best].expires_at))
			best = i;
	}
	return best;
}

static void
claim_entry(int idx, const MarketoConn *conn, const uint8 *digest)
{
	GovToken   *t = &tokens->entries[idx];

	SpinLockAcquire(&t->mutex);
	strlcpy(t->instance, conn->instance, sizeof(t->instance));
	strlcpy(t->client_id, conn->client_id, sizeof(t->client_id));
	memcpy(t->secret_digest, digest, PG_SHA256_DIGEST_LENGTH);
	t->generation++;
	t->token[0] = '\0';
	t->expires_at = 0;
	SpinLockRelease(&t->mutex);
}

/* The index of conn's token entry, claimed if new, and its generation. */
static int
entry_index(const MarketoConn *conn, uint32 *generation)
{
	uint8		digest[PG_SHA256_DIGEST_LENGTH];
	int			idx;

	governor_attach(conn->instance);
	if (strlen(conn->client_id) >= TOKEN_CLIENT_ID_LEN)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("Marketo client_id is too long"),
				 errdetail("marketo_fdw accepts client ids of at most %d bytes.",
						   TOKEN_CLIENT_ID_LEN - 1)));
	secret_digest(conn->client_secret, digest);

	LWLockAcquire(tokens->lock, LW_SHARED);
	idx = find_entry(conn, digest);
	if (idx >= 0)
		*generation = tokens->entries[idx].generation;
	LWLockRelease(tokens->lock);
	if (idx >= 0)
		return idx;

	LWLockAcquire(tokens->lock, LW_EXCLUSIVE);
	idx = find_entry(conn, digest);
	if (idx < 0)
	{
		idx = tokens->nentries < TOKEN_ENTRIES ? tokens->nentries++
			: reusable_entry(GetCurrentTimestamp());
		if (idx >= 0)
			claim_entry(idx, conn, digest);
	}
	if (idx >= 0)
		*generation = tokens->entries[idx].generation;
	LWLockRelease(tokens->lock);

	if (idx < 0)
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("too many Marketo API users"),
				 errdetail("marketo_fdw shares access tokens for at most %d combinations of instance, client_id and client_secret.",
						   TOKEN_ENTRIES),
				 errhint("Every entry holds a live token or a fetch; try again when one expires.")));
	return idx;
}

/*
 * Under the spinlock: may the token be handed out now?  Only while it has
 * TOKEN_MARGIN_MS to live yet, so that it does not expire under a call or
 * a short run of pages.  A token that had less than TOKEN_SHORT_LIFETIME_MS
 * to live when it was put here needs to live only TOKEN_SHORT_MARGIN_MS
 * (and at most half that lifetime) yet: test servers issue such tokens,
 * and near the end of a token's hour Marketo answers a fetch with the same
 * token and the little time it has left, which a one-minute margin would
 * refuse again and again until it expired.
 */
static bool
token_usable(const GovToken *t, TimestampTz now)
{
	int64		lifetime_ms = (t->expires_at - t->issued_at) / 1000;
	int64		margin_ms = TOKEN_MARGIN_MS;

	if (lifetime_ms < TOKEN_SHORT_LIFETIME_MS)
		margin_ms = Min(TOKEN_SHORT_MARGIN_MS, lifetime_ms / 2);
	return t->token[0] != '\0' &&
		now < TimestampTzPlusMilliseconds(t->expires_at, -margin_ms);
}

/*
 * Copy out a usable token, or make this backend the one fetching if nobody
 * else is: nobody fetches, or the one who did gave up on it or outlived
 * every try it may make (request_timeout each), so it is surely stuck.
 */
static TokenVerdict
try_token(GovToken *t, uint32 generation, const MarketoConn *conn,
		  TimestampTz now, char *copy, int *fetcher, TimestampTz *fetch_deadline)
{
	TokenVerdict verdict;

	SpinLockAcquire(&t->mutex);
	if (t->generation != generation)
	{
		SpinLockRelease(&t->mutex);
		return TOKEN_RELOOKUP;
	}
	*fetcher = t->fetcher_pid;
	/* a fetch may take every retry it is allowed before it gives up */
	*fetch_deadline = TimestampTzPlusMilliseconds(t->fetch_started,
												  conn->request_timeout * (int64) 1000 *
												  (marketo_max_retries + 1));
	if (token_usable(t, now))
	{
		strlcpy(copy, t->token, TOKEN_LEN);
		verdict = TOKEN_COPIED;
	}
	else if (*fetcher == 0 || *fetcher == MyProcPid || now >= *fetch_deadline)
	{
		t->fetcher_pid = MyProcPid;
		t->fetch_started = now;
		verdict = TOKEN_FETCH;
	}
	else
		verdict = TOKEN_WAIT;
	SpinLockRelease(&t->mutex);
	return verdict;
}

/* Stop waiting for a fetcher that has died without saying so. */
static void
drop_dead_fetcher(GovToken *t, int fetcher)
{
	if (BackendPidGetProc(fetcher) != NULL)
		return;
	SpinLockAcquire(&t->mutex);
	if (t->fetcher_pid == fetcher)
		t->fetcher_pid = 0;
	SpinLockRelease(&t->mutex);
}

bool
governor_token_get(const MarketoConn *conn, char *token, size_t tokenlen)
{
	uint32		generation;
	int			idx = entry_index(conn, &generation);
	GovToken   *t = &tokens->entries[idx];
	char		copy[TOKEN_LEN];
	TokenVerdict verdict;
	bool		waited = false;

	for (;;)
	{
		TimestampTz now = GetCurrentTimestamp();
		TimestampTz fetch_deadline;
		int			fetcher;
		long		timeout;

		verdict = try_token(t, generation, conn, now, copy, &fetcher,
							&fetch_deadline);
		if (verdict == TOKEN_RELOOKUP)
		{
			idx = entry_index(conn, &generation);
			t = &tokens->entries[idx];
			continue;
		}
		if (verdict == TOKEN_FETCH)
			fetching[idx] = true;
		if (verdict != TOKEN_WAIT)
			break;

		progress_waiting("access token");
		waited = true;
		timeout = Min(TOKEN_RECHECK_MS, (fetch_deadline - now + 999) / 1000);
		if (ConditionVariableTimedSleep(&tokens->cv, timeout, PG_WAIT_EXTENSION))
			drop_dead_fetcher(t, fetcher);
	}
	ConditionVariableCancelSleep();
	if (waited)
		progress_waiting(NULL);

	if (verdict == TOKEN_FETCH)
		return false;
	if (strlen(copy) >= tokenlen)
		elog(ERROR, "buffer of %zu bytes too small for a Marketo access token",
			 tokenlen);
	strlcpy(token, copy, tokenlen);
	return true;
}

/* This backend's fetch for entry idx is over; wake those who wait for it. */
static void
finish_fetch(int idx)
{
	GovToken   *t = &tokens->entries[idx];

	SpinLockAcquire(&t->mutex);
	if (t->fetcher_pid == MyProcPid)
		t->fetcher_pid = 0;
	SpinLockRelease(&t->mutex);
	fetching[idx] = false;
	ConditionVariableBroadcast(&tokens->cv);
}

void
governor_token_put(const MarketoConn *conn, const char *token,
				   TimestampTz expires_at)
{
	uint32		generation;
	int			idx = entry_index(conn, &generation);
	GovToken   *t = &tokens->entries[idx];
	TimestampTz now = GetCurrentTimestamp();

	if (strlen(token) >= TOKEN_LEN)
	{
		finish_fetch(idx);
		ereport(ERROR,
				(errcode(ERRCODE_FDW_ERROR),
				 errmsg("Marketo returned an access token of %zu bytes",
						strlen(token)),
				 errdetail("marketo_fdw keeps access tokens of at most %d bytes.",
						   TOKEN_LEN - 1)));
	}

	SpinLockAcquire(&t->mutex);
	strlcpy(t->token, token, TOKEN_LEN);
	t->issued_at = now;
	t->expires_at = expires_at;
	SpinLockRelease(&t->mutex);
	finish_fetch(idx);
}

/*
 * Runs on error paths, so it finds the entry among this backend's own
 * fetches, without a digest or the LWLock (an entry's key never changes).
 */
void
governor_token_abandon(const MarketoConn *conn)
{
	for (int i = 0; i < TOKEN_ENTRIES; i++)
	{
		GovToken   *t = &tokens->entries[i];

		if (fetching[i] &&
			strcmp(t->instance, conn->instance) == 0 &&
			strcmp(t->client_id, conn->client_id) == 0)
			finish_fetch(i);
	}
}

void
governor_token_forget(const MarketoConn *conn, const char *token)
{
	uint32		generation;
	GovToken   *t = &tokens->entries[entry_index(conn, &generation)];

	SpinLockAcquire(&t->mutex);
	if (t->generation == generation && strcmp(t->token, token) == 0)
		t->token[0] = '\0';
	SpinLockRelease(&t->mutex);
}

void
governor_token_release(void)
{
	for (int i = 0; i < TOKEN_ENTRIES; i++)
	{
		if (fetching[i])
			finish_fetch(i);
	}
}
