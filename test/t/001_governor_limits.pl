# Eight backends together stay inside one instance's limits: never more
# than rate_limit calls in any window, never more than max_concurrency in
# flight, no 606 or 615 from Marketo, and the budget is not wasted.
use strict;
use warnings;

use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use MarketoTest;

my $mock = start_mock(rate_window => 2, rate_limit => 100, max_in_flight => 10);
my $node = new_cluster('limits');
create_fdw_objects($node, $mock, rate_limit => 100, max_concurrency => 3);

# Each session looks leads up one by one for $seconds and checks every row;
# @slowest gets each session's longest lookup, in seconds.
our @slowest;
sub run_sessions
{
	my ($sessions, $seconds) = @_;
	my @runs;
	for my $i (1 .. $sessions)
	{
		my $sql = qq{
DO \$\$
DECLARE n int := 0; want int; got text; t0 timestamptz; slowest interval := '0';
BEGIN
  WHILE clock_timestamp() < now() + interval '$seconds s' LOOP
    want := 1 + (n * $sessions + $i) % 2000;
    t0 := clock_timestamp();
    SELECT email INTO got FROM leads WHERE id = want;
    slowest := greatest(slowest, clock_timestamp() - t0);
    IF got IS DISTINCT FROM 'lead' || want || '\@example.com' THEN
      RAISE EXCEPTION 'lead % came back as %', want, got;
    END IF;
    n := n + 1;
  END LOOP;
  RAISE NOTICE 'lookups: % slowest: %', n, extract(epoch from slowest);
END \$\$;};
		my ($out, $err) = ('', '');
		my $h = IPC::Run::start(
			[ 'psql', '-X', '-v', 'ON_ERROR_STOP=1', '-d', $node->connstr('postgres'), '-c', $sql ],
			'>', \$out, '2>', \$err);
		push @runs, [ $h, \$out, \$err ];
	}
	my $ok = 1;
	my @lookups;
	@slowest = ();
	for my $r (@runs)
	{
		$r->[0]->finish;
		if ($r->[0]->result != 0 || ${ $r->[2] } =~ /ERROR/)
		{
			diag ${ $r->[2] };
			$ok = 0;
		}
		push @lookups, ${ $r->[2] } =~ /lookups: (\d+)/ ? $1 : 0;
		push @slowest, ${ $r->[2] } =~ /slowest: ([\d.]+)/ ? $1 : 99;
	}
	return ($ok, @lookups);
}

sub admitted_starts
{
	return sort { $a <=> $b }
	  map { $_->{t_start} }
	  grep { $_->{admitted} && $_->{path} eq '/rest/v1/leads.json' } @{ $mock->calls };
}

# Phase 1: slow answers, so calls in flight are what binds.
$mock->reset;
$mock->config(latency_ms => 300);
my ($ok, @lookups) = run_sessions(8, 4);
ok($ok, 'phase 1: every session read correct rows');
my $s = $mock->summary;
cmp_ok($s->{max_in_flight}, '<=', 3, 'never more than max_concurrency calls in flight');
is($s->{max_in_flight}, 3, 'and the slots are all used');
is($s->{errors}{615} // 0, 0, 'no 615 from Marketo');
is($s->{identity_calls}, 1, 'eight backends share one access token');

# Phase 2: fast answers and a tight rate limit, so the window binds.
$node->safe_psql('postgres', "ALTER SERVER mkto OPTIONS (SET rate_limit '20')");
$mock->reset;
$mock->config(latency_ms => 20);
($ok, @lookups) = run_sessions(8, 8);
ok($ok, 'phase 2: every session read correct rows');
my ($fewest, $most) = (sort { $a <=> $b } @lookups)[ 0, -1 ];
note "lookups per session: @lookups";
# Backends start in the order they began waiting: nobody is starved while
# others take the budget (each session has one call waiting at a time).
cmp_ok($fewest, '>=', 0.75 * $most, 'the budget is shared fairly between sessions');
my $slowest = (sort { $b <=> $a } @slowest)[0];
note "slowest lookup per session: @slowest";
# 8 sessions share 20 calls per 2 s: in turn, each waits about 0.8 s
cmp_ok($slowest, '<', 2.0, 'no lookup waits a whole window while others go ahead');
$s = $mock->summary;
cmp_ok($s->{max_in_window}, '<=', 20, 'never more than rate_limit calls in any 2 s window');
is($s->{errors}{606} // 0, 0, 'no 606 from Marketo');
my @starts = admitted_starts();
my $span = $starts[-1] - $starts[0];
my $allowed = 20 * $span / 2;
note sprintf('%d calls in %.2f s; the limit allows %.1f', scalar(@starts), $span, $allowed);
cmp_ok(scalar(@starts), '>=', 0.9 * $allowed, 'at least 90% of the rate budget used');

my $status = $node->safe_psql('postgres',
	"SELECT rate_limit, max_concurrency, in_flight, errors_606, errors_615 FROM marketo_fdw_status()");
is($status, '20|3|0|0|0', 'marketo_fdw_status tells the limits and that nothing is in flight');

# A raised limit takes effect at once (the smallest of the servers in use wins)
$node->safe_psql('postgres', "ALTER SERVER mkto OPTIONS (SET rate_limit '40')");
$node->safe_psql('postgres', "SELECT email FROM leads WHERE id = 1");
is($node->safe_psql('postgres', "SELECT rate_limit FROM marketo_fdw_status()"), '40',
	'ALTER SERVER raising rate_limit applies without a restart');
$node->safe_psql('postgres', qq{
	CREATE SERVER mkto_low FOREIGN DATA WRAPPER marketo_fdw
	  OPTIONS (base_url '@{[ $mock->url ]}', rate_limit '10');
	CREATE USER MAPPING FOR PUBLIC SERVER mkto_low
	  OPTIONS (client_id 'mock-client', client_secret 'mock-secret');
	CREATE FOREIGN TABLE leads_low (id integer, email text) SERVER mkto_low OPTIONS (object 'leads');
	SELECT email FROM leads_low WHERE id = 2;});
is($node->safe_psql('postgres', "SELECT count(*), min(rate_limit) FROM marketo_fdw_status()"), '1|10',
	'two servers of one instance share one state, and the smaller limit wins');

$node->stop;
$mock->stop;
done_testing();
