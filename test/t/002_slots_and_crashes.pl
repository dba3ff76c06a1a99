# A call's slot comes back when its backend is terminated, and a crash
# restart starts the governor clean.
use strict;
use warnings;

use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use Time::HiRes qw(usleep);
use MarketoTest;

my $mock = start_mock(rate_window => 2);
my $node = new_cluster('slots', "restart_after_crash = on\n");
create_fdw_objects($node, $mock, max_concurrency => 2);

# warm up: a token and an instance in the governor
is($node->safe_psql('postgres', "SELECT email FROM leads WHERE id = 1"),
	'lead1@example.com', 'a lookup works');

sub start_slow_lookup
{
	$mock->fault(kind => 'slow', delay_ms => 60000, path => '/rest/v1/leads.json');
	my ($out, $err) = ('', '');
	my $h = IPC::Run::start(
		[ 'psql', '-X', '-d', $node->connstr('postgres'), '-c',
		  "SELECT pg_backend_pid(); SELECT email FROM leads WHERE id = 2" ],
		'>', \$out, '2>', \$err);
	return $h;
}

sub wait_for
{
	my ($sql, $want) = @_;
	for (1 .. 100)
	{
		return 1 if $node->safe_psql('postgres', $sql) eq $want;
		usleep(100_000);
	}
	return 0;
}

# pg_terminate_backend while the backend holds a slot
my $h = start_slow_lookup();
ok(wait_for("SELECT in_flight FROM marketo_fdw_status()", '1'), 'the slow call holds a slot');
my $pid = $node->safe_psql('postgres',
	"SELECT pid FROM marketo_fdw_progress WHERE object = 'leads'");
like($pid, qr/^\d+$/, 'marketo_fdw_progress shows the scan');
$node->safe_psql('postgres', "SELECT pg_terminate_backend($pid)");
$h->finish;
ok(wait_for("SELECT in_flight FROM marketo_fdw_status()", '0'), 'the slot came back');
is($node->safe_psql('postgres', "SELECT count(*) FROM marketo_fdw_progress"), '0',
	'the progress entry is gone');

# both slots usable again: two lookups at once still succeed
$mock->reset;
is($node->safe_psql('postgres', "SELECT count(*) FROM leads WHERE id IN (3, 4)"), '2',
	'lookups work after the termination');

# Waiting for a slot is visible and honours statement_timeout: both slots
# are held by slow calls, a third lookup waits and times out.
my @slow = (start_slow_lookup(), start_slow_lookup());
ok(wait_for("SELECT in_flight FROM marketo_fdw_status()", '2'), 'two slow calls hold both slots');
my $waiter = IPC::Run::start(
	[ 'psql', '-X', '-d', $node->connstr('postgres'), '-c',
	  "SET statement_timeout = '1s'; SELECT email FROM leads WHERE id = 9" ],
	'>', \my $wout, '2>', \my $werr);
ok(wait_for(q{SELECT count(*) FROM marketo_fdw_progress WHERE waiting_for = 'concurrency slot'}, '1'),
	'marketo_fdw_progress shows the third lookup waiting for a slot');
is($node->safe_psql('postgres', q{
	SELECT wait_event_type FROM pg_stat_activity
	 WHERE pid = (SELECT pid FROM marketo_fdw_progress WHERE waiting_for = 'concurrency slot')}),
	'Extension', 'pg_stat_activity shows the wait');
$waiter->finish;
like($werr, qr/canceling statement due to statement timeout/, 'the wait ends at statement_timeout');
$node->safe_psql('postgres', q{
	SELECT pg_terminate_backend(pid) FROM marketo_fdw_progress WHERE object = 'leads'});
$_->finish for @slow;
ok(wait_for("SELECT in_flight FROM marketo_fdw_status()", '0'), 'all slots came back');
$mock->reset;

# SIGKILL while holding a slot: the postmaster restarts, the governor starts clean
$h = start_slow_lookup();
ok(wait_for("SELECT in_flight FROM marketo_fdw_status()", '1'), 'another slow call holds a slot');
$pid = $node->safe_psql('postgres',
	"SELECT pid FROM marketo_fdw_progress WHERE object = 'leads'");
kill 'KILL', $pid;
$h->finish;
$node->poll_query_until('postgres', 'SELECT 1', '1');
is($node->safe_psql('postgres', "SELECT coalesce(sum(in_flight), 0) FROM marketo_fdw_status()"),
	'0', 'after the crash restart nothing is in flight');
$mock->reset;
is($node->safe_psql('postgres', "SELECT email FROM leads WHERE id = 5"),
	'lead5@example.com', 'lookups work after the crash restart');

$node->stop;
$mock->stop;
done_testing();
