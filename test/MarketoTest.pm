# Helpers for marketo_fdw's TAP tests: a mock Marketo per test, clusters
# that preload the library, and the foreign objects every test uses.
package MarketoTest;

use strict;
use warnings;

use Exporter 'import';
use HTTP::Tiny;
use IPC::Run;
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Time::HiRes qw(usleep);

our @EXPORT = qw(start_mock new_cluster create_fdw_objects);

my $json = JSON::PP->new->canonical;

# start_mock(rate_window => 2, latency_ms => 20, ...): the mock on a free port
sub start_mock
{
	my (%opt) = @_;
	my $dir = PostgreSQL::Test::Utils::tempdir();
	my @cmd = ('python3', "$ENV{TESTDIR}/test/mock_marketo.py",
		'--port', '0', '--port-file', "$dir/port",
		'--log-file', "$dir/calls.log");
	push @cmd, ("--" . ($_ =~ s/_/-/gr), $opt{$_}) for sort keys %opt;
	my $handle = IPC::Run::start(\@cmd, '>', "$dir/out", '2>', "$dir/err");
	for (1 .. 100)
	{
		last if -s "$dir/port";
		usleep(100_000);
	}
	die "mock did not start: " . slurp_file("$dir/err") unless -s "$dir/port";
	my $port = slurp_file("$dir/port");
	$port =~ s/\s+//g;
	return bless { handle => $handle, port => $port, http => HTTP::Tiny->new },
	  'MarketoTest::Mock';
}

# new_cluster(name, extra postgresql.conf lines): started, library preloaded
sub new_cluster
{
	my ($name, $conf) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init;
	$node->append_conf('postgresql.conf',
		"shared_preload_libraries = 'marketo_fdw'\n"
		  . "marketo_fdw.rate_window = '2s'\n"
		  . "max_connections = 40\n"
		  . ($conf // ''));
	$node->start;
	return $node;
}

# The server, user mapping and leads table, with the given server options.
sub create_fdw_objects
{
	my ($node, $mock, %server) = @_;
	my $opts = join(', ',
		("base_url '" . $mock->url . "'"),
		map { "$_ '$server{$_}'" } sort keys %server);
	$node->safe_psql('postgres', qq{
		CREATE EXTENSION marketo_fdw;
		CREATE SERVER mkto FOREIGN DATA WRAPPER marketo_fdw OPTIONS ($opts);
		CREATE USER MAPPING FOR PUBLIC SERVER mkto
		  OPTIONS (client_id 'mock-client', client_secret 'mock-secret');
		CREATE FOREIGN TABLE leads (id integer, email text, first_name text, segment text)
		  SERVER mkto OPTIONS (object 'leads');
	});
}

package MarketoTest::Mock;

sub url { my $self = shift; return "http://127.0.0.1:$self->{port}"; }

sub control
{
	my ($self, $method, $path, $body) = @_;
	my $res = $self->{http}->request($method, $self->url . $path,
		{
			headers => { 'Content-Type' => 'application/json' },
			content => $json->encode($body // {})
		});
	die "mock $method $path: $res->{status} $res->{content}" unless $res->{success};
	return $json->decode($res->{content});
}

# a clean log and no faults; issued tokens stay valid unless asked otherwise
sub reset
{
	my ($self, %opt) = @_;
	$self->control('POST', '/_mock/reset',
		{ keep_tokens => JSON::PP::true, %opt });
}
sub fault { my ($self, %f) = @_; $self->control('POST', '/_mock/fault', \%f); }
sub config { my ($self, %c) = @_; $self->control('POST', '/_mock/config', \%c); }
sub summary { my $self = shift; return $self->control('GET', '/_mock/summary'); }
# the REST calls logged since the last reset (identity calls aside)
sub calls
{
	my $self = shift;
	return [ grep { $_->{kind} eq 'rest' } @{ $self->control('GET', '/_mock/log')->{calls} } ];
}

sub stop
{
	my $self = shift;
	return unless $self->{handle};
	$self->{handle}->signal('TERM');
	$self->{handle}->finish;
	delete $self->{handle};
}

sub DESTROY { my $self = shift; $self->stop; }

1;
