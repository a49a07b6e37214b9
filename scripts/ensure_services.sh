#!/usr/bin/env bash
# Make sure PostgreSQL and Redis answer on 127.0.0.1; start them when installed but down; fail clearly otherwise.
set -u
pg_up() { pg_isready -q -h 127.0.0.1 -p 5432 -U postgres 2>/dev/null || (command -v psql >/dev/null && psql -h 127.0.0.1 -U postgres -tAc 'select 1' >/dev/null 2>&1); }
redis_up() { (command -v redis-cli >/dev/null && redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG) || (exec 3<>/dev/tcp/127.0.0.1/6379 && printf 'PING\r\n' >&3 && head -c 5 <&3 | grep -q PONG) 2>/dev/null; }

if ! pg_up; then
  echo "PostgreSQL is down; starting it" >&2
  if command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
  fi
  for _ in $(seq 1 30); do pg_up && break; sleep 1; done
fi
if ! redis_up; then
  echo "Redis is down; starting it" >&2
  if command -v redis-server >/dev/null; then
    mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log || true
  fi
  for _ in $(seq 1 30); do redis_up && break; sleep 0.5; done
fi

ok=0
pg_up || { echo "ERROR: PostgreSQL is not reachable on 127.0.0.1:5432 (user postgres, trust auth) and could not be started." >&2; ok=1; }
redis_up || { echo "ERROR: Redis is not reachable on 127.0.0.1:6379 and could not be started." >&2; ok=1; }
[ $ok -eq 0 ] && echo "services: PostgreSQL 127.0.0.1:5432 and Redis 127.0.0.1:6379 are up"
exit $ok
