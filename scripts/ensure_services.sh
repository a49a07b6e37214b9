#!/usr/bin/env bash
# First attempt for `make test`: when PostgreSQL / Redis are installed on this machine but down, start them.
# Never fails: whatever is still down afterwards, `python -m project.embedded run --fallback` replaces with the
# embedded servers (and prints which backends it chose).
set -u
PG_PORT="${PG_PORT:-5432}"
REDIS_PORT="${REDIS_PORT:-6379}"
pg_up() { (command -v pg_isready >/dev/null && pg_isready -q -h 127.0.0.1 -p "$PG_PORT" -U postgres) 2>/dev/null; }
redis_up() { (exec 3<>"/dev/tcp/127.0.0.1/$REDIS_PORT" && printf 'PING\r\n' >&3 && head -c 5 <&3 | grep -q PONG) 2>/dev/null; }

if ! pg_up && command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
  echo "services: system PostgreSQL is down; starting it" >&2
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start >/dev/null 2>&1 || true
  for _ in $(seq 1 20); do pg_up && break; sleep 0.5; done
fi
if ! redis_up && command -v redis-server >/dev/null; then
  echo "services: system Redis is down; starting it" >&2
  mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
  redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no --dir /var/lib/redis \
    --logfile /var/log/redis/ci.log >/dev/null 2>&1 || true
  for _ in $(seq 1 20); do redis_up && break; sleep 0.25; done
fi
pg_up && echo "services: system PostgreSQL on 127.0.0.1:$PG_PORT is up" || echo "services: no system PostgreSQL; the embedded one will be used"
redis_up && echo "services: system Redis on 127.0.0.1:$REDIS_PORT is up" || echo "services: no system Redis; the embedded one will be used"
exit 0
