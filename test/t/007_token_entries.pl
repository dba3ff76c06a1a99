# The shared token table does not fill up for good: credentials that got
# no token (a wrong secret, a rotated one) leave room for the next ones,
# and the right secret still works after 70 wrong ones.
use strict;
use warnings;

use PostgreSQL::Test::Utils;
use Test::More;
use MarketoTest;

my $mock = start_mock();
my $node = new_cluster('tokens');
create_fdw_objects($node, $mock);

my $rejected = 0;
for my $i (1 .. 70)
{
	$node->safe_psql('postgres',
		"ALTER USER MAPPING FOR PUBLIC SERVER mkto OPTIONS (SET client_secret 'wrong-$i')");
	my ($ret, $out, $err) = $node->psql('postgres', "SELECT email FROM leads WHERE id = 1");
	$rejected++ if $err =~ /rejected the client credentials/;
}
is($rejected, 70, 'each of 70 wrong secrets is refused by Marketo, none by a full table');

$node->safe_psql('postgres',
	"ALTER USER MAPPING FOR PUBLIC SERVER mkto OPTIONS (SET client_secret 'mock-secret')");
is($node->safe_psql('postgres', "SELECT email FROM leads WHERE id = 1"),
	'lead1@example.com', 'the right secret works afterwards');
unlike(slurp_file($node->logfile) =~ s/^.*statement:.*$//mgr, qr/wrong-\d+/,
	'no secret in the server log');

$node->stop;
$mock->stop;
done_testing();
