"""Green-thread set-up that every service process needs, done in one place.

nameko runs each worker as an eventlet green thread. psycopg 3's compiled wait
function blocks the whole process while it waits for PostgreSQL, so after
eventlet's monkey patching psycopg is switched to its select()-based wait,
which eventlet has made cooperative: concurrent queries then overlap.
"""

import eventlet


def patch():
    eventlet.monkey_patch()
    import psycopg.waiting

    psycopg.waiting.wait = psycopg.waiting.wait_select
