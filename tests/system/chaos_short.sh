#!/usr/bin/env bash
# The short form of the long fault suite (tests/chaos/chaos.sh, `make chaos`)
# inside `make test`: one iteration of every scenario, i.e. every crash point
# of both daemons, every gateway fault kind, the database stopped -m
# immediate, two and four relays, a paused relay, eight chargers, a dropping
# SMTP server and a DBA's replay, each checked strictly by the checker after
# recovery. The seed is printed; CHAOS_SEED and CHAOS_ONLY work as for
# `make chaos`.
export CHAOS_ITERATIONS=1
exec bash "$(dirname "$0")/../chaos/chaos.sh"
