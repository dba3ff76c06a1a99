# A 606 seen by one backend makes every backend of the instance back off,
# and all the work still completes with correct rows.
use strict;
use warnings;

use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use MarketoTest;

my $mock = start_mock(rate_window => 2, latency_ms => 10);
my $node = new_cluster('backoff');
create_fdw_objects($node, $mock, rate_limit => 100, max_concurrency => 4);
$node->safe_psql('postgres', "SELECT email FROM leads WHERE id = 1");
$mock->reset;
$mock->config(latency_ms => 10);

# Marketo answers 606 three times, after 20 calls went through.
$mock->fault(kind => '606', count => 3, after => 20);

my @runs;
for my $i (1 .. 4)
{
	my $sql = qq{
DO \$\$
DECLARE got text;
BEGIN
  FOR n IN 1..25 LOOP
    SELECT email INTO got FROM leads WHERE id = n * 4 + $i;
    IF got IS DISTINCT FROM 'lead' || (n * 4 + $i) || '\@example.com' THEN
      RAISE EXCEPTION 'wrong row for %: %', n * 4 + $i, got;
    END IF;
  END LOOP;
END \$\$;};
	my ($out, $err) = ('', '');
	push @runs, [ IPC::Run::start(
		[ 'psql', '-X', '-v', 'ON_ERROR_STOP=1', '-d', $node->connstr('postgres'), '-c', $sql ],
		'>', \$out, '2>', \$err), \$err ];
}
my $ok = 1;
for my $r (@runs)
{
	$r->[0]->finish;
	$ok = 0 if $r->[0]->result != 0;
	diag ${ $r->[1] } if ${ $r->[1] } =~ /ERROR/;
}
ok($ok, 'all four sessions finished with correct rows');

my @calls = sort { $a->{t_start} <=> $b->{t_start} }
  grep { $_->{path} eq '/rest/v1/leads.json' } @{ $mock->calls };
my @throttled = grep { ($_->{code} // '') eq '606' } @calls;
is(scalar(@throttled), 3, 'Marketo said 606 three times');
is(scalar(grep { !defined $_->{code} } @calls), 100, 'and every lookup was answered once');

# After the first 606 answered, the backends pause for the shared
# cool-down (at least 150 ms with a 2 s window).  Only calls the other
# three sessions had been admitted for before the 606 was known may still
# arrive; without a shared pause these sessions would start ~60 calls in
# that time (10 ms each).
my $first_606_end = $throttled[0]{t_end};
my @too_soon = grep { $_->{t_start} > $first_606_end && $_->{t_start} < $first_606_end + 0.15 } @calls;
note sprintf('calls started within 150 ms after the first 606: %s',
	join(', ', map { sprintf('+%.1f ms', 1000 * ($_->{t_start} - $first_606_end)) } @too_soon));
cmp_ok(scalar(@too_soon), '<=', 3, 'every backend paused after the 606');

is($node->safe_psql('postgres', "SELECT errors_606, retries >= 3 FROM marketo_fdw_status()"),
	'3|t', 'marketo_fdw_status counts the 606s and the retries');

$node->stop;
$mock->stop;
done_testing();
