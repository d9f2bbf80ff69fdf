# The Django side of internal/djangotest: runs a JSON list of operations
# (argv[1]) against the project's database through Django and django-otp's
# own code, and prints one JSON list of results. With argv[1] == "--serve"
# it reads such lists from stdin, one a line, and answers each with a line.
# With argv[2] == "--wait" it
# sets Django up, connects, loads the users named by the operations, prints
# "ready" and waits for a line on stdin before running them, so that a test
# can race it against totpadm processes without Django's start-up time in
# between.
import json
import sys
from datetime import timedelta

import django

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection  # noqa: E402
from django.utils import timezone  # noqa: E402

import django_otp  # noqa: E402
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken  # noqa: E402
from django_otp.plugins.otp_totp.models import TOTPDevice  # noqa: E402

User = get_user_model()
users = {}


def user(login):
    if login not in users:
        users[login] = User.objects.get(username=login)
    return users[login]


def kind(device):
    if isinstance(device, TOTPDevice):
        return "totp"
    if isinstance(device, StaticDevice):
        return "static"
    return device.persistent_id


def stamp(t):
    return None if t is None else t.astimezone(timezone.utc).isoformat()


def all_devices(login):
    # django_otp.devices_for_user with confirmed=None: every device of every
    # installed plugin, the way an application enumerates them.
    return list(django_otp.devices_for_user(user(login), confirmed=None))


def verify(login, token, cls):
    # django_otp.verify_token: the device loaded with select_for_update in a
    # transaction, the way django-otp's forms verify a chosen device.
    u = user(login)
    for d in cls.objects.devices_for_user(u, confirmed=None).order_by("id"):
        if django_otp.verify_token(u, d.persistent_id, token) is not None:
            return {"accepted": True, "device": d.name}
    return {"accepted": False}


def op_create_user(o):
    u = User.objects.create_user(username=o["login"], email=o.get("email", ""))
    return {"id": u.pk}


def op_create_totp(o):
    d = TOTPDevice.objects.create(user=user(o["login"]), name=o["name"], confirmed=o["confirmed"])
    return {"id": d.pk, "key": d.key}


def op_create_static(o):
    d = StaticDevice.objects.create(user=user(o["login"]), name=o.get("name") or "backup")
    for tok in o.get("tokens") or []:
        StaticToken.objects.create(device=d, token=tok)
    return {"id": d.pk}


def op_verify_totp(o):
    return verify(o["login"], o["token"], TOTPDevice)


def op_verify_static(o):
    return verify(o["login"], o["token"], StaticDevice)


def op_match_token(o):
    # django_otp.match_token: confirmed devices of every kind, what a login
    # form that does not pick a device calls.
    d = django_otp.match_token(user(o["login"]), o["token"])
    return {"accepted": d is not None, "device": None if d is None else d.name}


def op_devices(o):
    out = []
    for d in all_devices(o["login"]):
        rec = {
            "kind": kind(d),
            "id": d.pk,
            "name": d.name,
            "confirmed": d.confirmed,
            "throttling_failure_count": d.throttling_failure_count,
            "throttling_failure_timestamp": stamp(d.throttling_failure_timestamp),
        }
        if isinstance(d, TOTPDevice):
            rec.update(key=d.key, step=d.step, t0=d.t0, digits=d.digits,
                       tolerance=d.tolerance, drift=d.drift, last_t=d.last_t)
        if isinstance(d, StaticDevice):
            rec["tokens"] = sorted(t.token for t in d.token_set.all())
        out.append(rec)
    return {"devices": out}


def op_verify_is_allowed(o):
    out = []
    for d in all_devices(o["login"]):
        allowed, data = d.verify_is_allowed()
        rec = {"kind": kind(d), "name": d.name, "allowed": allowed}
        if data and data.get("locked_until") is not None:
            rec["locked_until"] = stamp(data["locked_until"])
        out.append(rec)
    return {"devices": out}


def op_set_throttle(o):
    ts = None
    if o["count"] > 0:
        ts = timezone.now() - timedelta(seconds=o["seconds_ago"])
    n = 0
    for d in all_devices(o["login"]):
        if o.get("kind") and kind(d) != o["kind"]:
            continue
        d.throttling_failure_count = o["count"]
        d.throttling_failure_timestamp = ts
        d.save()
        n += 1
    return {"devices": n}


def tables():
    # Every table but totpadm's own (prefix totp_; django-otp's are otp_*).
    return sorted(t for t in connection.introspection.table_names() if not t.startswith("totp_"))


def op_schema(o):
    lines = []
    with connection.cursor() as c:
        if connection.vendor == "sqlite":
            c.execute("SELECT type, name, tbl_name, sql FROM sqlite_master "
                      "WHERE substr(tbl_name, 1, 5) <> 'totp_' ORDER BY type, name")
            lines += ["|".join(str(v) for v in row) for row in c.fetchall()]
        elif connection.vendor == "postgresql":
            c.execute("SELECT table_name, ordinal_position, column_name, data_type, "
                      "character_maximum_length, numeric_precision, is_nullable, column_default "
                      "FROM information_schema.columns WHERE table_schema = current_schema() "
                      "AND substr(table_name, 1, 5) <> 'totp_' ORDER BY 1, 2")
            lines += ["column|" + "|".join(str(v) for v in row) for row in c.fetchall()]
            c.execute("SELECT tablename, indexname, indexdef FROM pg_indexes "
                      "WHERE schemaname = current_schema() AND substr(tablename, 1, 5) <> 'totp_' ORDER BY 1, 2")
            lines += ["index|" + "|".join(str(v) for v in row) for row in c.fetchall()]
            c.execute("SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
                      "WHERE connamespace = current_schema()::regnamespace "
                      "AND substr(conrelid::regclass::text, 1, 5) <> 'totp_' ORDER BY 1, 2")
            lines += ["constraint|" + "|".join(str(v) for v in row) for row in c.fetchall()]
        else:
            c.execute("SELECT table_name, ordinal_position, column_name, column_type, "
                      "is_nullable, column_default, extra, collation_name "
                      "FROM information_schema.columns WHERE table_schema = DATABASE() "
                      "AND substr(table_name, 1, 5) <> 'totp_' ORDER BY 1, 2")
            lines += ["column|" + "|".join(str(v) for v in row) for row in c.fetchall()]
            c.execute("SELECT table_name, index_name, seq_in_index, column_name, non_unique "
                      "FROM information_schema.statistics WHERE table_schema = DATABASE() "
                      "AND substr(table_name, 1, 5) <> 'totp_' ORDER BY 1, 2, 3")
            lines += ["index|" + "|".join(str(v) for v in row) for row in c.fetchall()]
            c.execute("SELECT k.table_name, k.constraint_name, k.column_name, "
                      "k.referenced_table_name, k.referenced_column_name "
                      "FROM information_schema.key_column_usage k WHERE k.table_schema = DATABASE() "
                      "AND substr(k.table_name, 1, 5) <> 'totp_' ORDER BY 1, 2, 3")
            lines += ["key|" + "|".join(str(v) for v in row) for row in c.fetchall()]
            c.execute("SELECT table_name, engine, table_collation FROM information_schema.tables "
                      "WHERE table_schema = DATABASE() AND substr(table_name, 1, 5) <> 'totp_' ORDER BY 1")
            lines += ["table|" + "|".join(str(v) for v in row) for row in c.fetchall()]
    return {"dump": "\n".join(lines)}


def op_data(o):
    # Every row of every table, totpadm's included unless asked otherwise.
    names = sorted(connection.introspection.table_names())
    skip = set(o.get("skip") or [])
    lines = []
    with connection.cursor() as c:
        for name in names:
            if name in skip:
                continue
            c.execute("SELECT * FROM %s ORDER BY 1" % connection.ops.quote_name(name))
            lines.append("== " + name + " " + ",".join(col[0] for col in c.description))
            lines += ["|".join(repr(v) for v in row) for row in c.fetchall()]
    return {"dump": "\n".join(lines)}


def op_tables(o):
    return {"tables": sorted(connection.introspection.table_names())}


def op_sql(o):
    with connection.cursor() as c:
        c.execute(o["sql"], o.get("params") or [])
        if c.description is None:
            return {"rows": [], "rowcount": c.rowcount}
        rows = [[v if isinstance(v, (int, float, str, bool, type(None))) else str(v) for v in row]
                for row in c.fetchall()]
        return {"rows": rows}


OPS = {name[3:]: fn for name, fn in globals().items() if name.startswith("op_")}


def run(o):
    fn = OPS.get(o["op"])
    if fn is None:
        raise SystemExit("djangotest helper: unknown op %r" % o["op"])
    try:
        return fn(o)
    except Exception as e:  # reported to the test, which decides
        return {"error": "%s: %s" % (type(e).__name__, e)}


def main():
    if sys.argv[1] == "--serve":
        # One batch a line, one line of results each, until stdin closes:
        # a project's helper starts Django once, not once per batch.
        for line in sys.stdin:
            print(json.dumps([run(o) for o in json.loads(line)]), flush=True)
        return
    ops = json.loads(sys.argv[1])
    if len(sys.argv) > 2 and sys.argv[2] == "--wait":
        connection.ensure_connection()
        for o in ops:
            if "login" in o and o["op"] != "create_user":
                user(o["login"])
        print("ready", flush=True)
        sys.stdin.readline()
    results = [run(o) for o in ops]
    print(json.dumps(results), flush=True)


main()
