#!/usr/bin/env bash
# The limit, measured in one run: pgbench appending one event per transaction to the events
# table, then the service's message appends over HTTP, at the same concurrency on the same
# PostgreSQL; prints both rates and their ratio (the target is 0.5 or more).
#   CONCURRENCY (default 32), SECONDS_PER_RUN (default 20)
set -euo pipefail
cd "$(dirname "$0")/.."
concurrency=${CONCURRENCY:-32}
seconds=${SECONDS_PER_RUN:-20}
cargo build --release -q -p api -p bench

# The service's appends (this also starts the private cluster under target/bench-pg).
./target/release/bench load --mix append --concurrency "$concurrency" --seconds "$seconds" \
  | tee target/bench-append.txt
service=$(tail -n 1 target/bench-append.txt | jq .commands_per_second)

# pgbench on a fresh database of the same cluster, with the same migrations.
socket="$PWD/target/bench-pg/pg"
[ -S "$socket/.s.PGSQL.5432" ] || socket=$(ls -d /tmp/upzento-pg-* | head -n 1)
database="pgbench_$(date +%s)"
psql -q -h "$socket" -U postgres -c "create database $database"
DATABASE_URL="postgres://postgres@localhost/$database?host=$socket" ./target/release/upzento migrate
pgbench=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)/pgbench
"$pgbench" -h "$socket" -U postgres -n -c "$concurrency" -j 2 -T "$seconds" -f bench/append.sql "$database" \
  | tee target/bench-pgbench.txt
limit=$(awk '/^tps = / { print $3 }' target/bench-pgbench.txt)

echo
echo "pgbench one-event appends: $limit transactions/s"
echo "service message appends:   $service commands/s"
echo "ratio: $(echo "$service / $limit" | bc -l | cut -c1-5) (target 0.5 or more)"
