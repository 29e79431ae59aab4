"""Django 3.2 ORM scenario of tenantproxy's client compatibility matrix.

  django_scenario.py migrate   runs the app's migrations directly against
                               Postgres (TP_DIRECT_URL) and seeds one
                               account per tenant, as a deploy would;
  django_scenario.py scenario  runs the app's queries through the proxy
                               (DATABASE_URL) as tenant TP_TENANT.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import django
from django.conf import settings

from common import ENV, OTHER_ID, TAG, TENANT, check, url_parts

mode = sys.argv[1]
url = ENV["TP_DIRECT_URL"] if mode == "migrate" else ENV["DATABASE_URL"]
parts = url_parts(url)
settings.configure(
    INSTALLED_APPS=["shop"],
    DATABASES={
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": parts["dbname"],
            "USER": parts["user"],
            "PASSWORD": parts["password"],
            "HOST": parts["host"],
            "PORT": parts["port"],
            "OPTIONS": {"sslmode": "disable"},
        }
    },
    USE_TZ=True,
    TIME_ZONE="UTC",
    DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
)
django.setup()

from django.core.management import call_command
from django.db import DatabaseError, connection, transaction
from django.db.models import F

from shop.models import Account, Note

if mode == "migrate":
    call_command("migrate", verbosity=0)
    for tenant in (1, 2):
        a = Account.objects.create(tenant_id=tenant, name=f"shop-seed-{tenant}")
        Note.objects.create(tenant_id=tenant, account=a, body=f"shop seed note {tenant}")
    sys.exit(0)

print(f"version: Django {django.get_version()}, psycopg2 {__import__('psycopg2').__version__}", flush=True)
other = int(ENV["TP_OTHER_SHOP_ID"])

tables = connection.introspection.table_names()
check("shop_account" in tables and "shop_note" in tables, "introspect tables", tables)
with connection.cursor() as cur:
    cols = [c.name for c in connection.introspection.get_table_description(cur, "shop_account")]
check(cols == ["id", "tenant_id", "name", "created_at"], "introspect columns", cols)

acc = Account.objects.create(tenant_id=TENANT, name=TAG)
note = Note.objects.create(tenant_id=TENANT, account=acc, body="hello")
check(acc.pk and note.pk, "create")

joined = list(Note.objects.select_related("account").filter(account__name=TAG))
check(len(joined) == 1 and joined[0].account.name == TAG and joined[0].body == "hello", "join reads back",
      [(n.account.name, n.body) for n in joined])

check(Note.objects.filter(pk=note.pk).update(stars=F("stars") + 1) == 1, "update")
note.refresh_from_db()
note.body = "hello again"
note.save()  # writes every column, the tenant column included
check(Note.objects.get(pk=note.pk).body == "hello again" and note.stars == 1, "save")

try:
    with transaction.atomic():
        Account.objects.create(tenant_id=TENANT, name=TAG + "-rollback")
        raise RuntimeError("roll back")
except RuntimeError:
    pass
check(not Account.objects.filter(name=TAG + "-rollback").exists(), "rollback")

for i in range(3):
    rows = list(Account.objects.raw("SELECT * FROM shop_account WHERE id = %s", [acc.pk]))
    check(len(rows) == 1 and rows[0].name == TAG, f"parameterised query, run {i + 1}")

check(not Account.objects.filter(pk=other).exists(), "other tenant's row is not seen")
check(Account.objects.filter(pk=other).update(name="stolen") == 0, "other tenant's row is not updated")
deleted, _ = Note.objects.filter(account_id=other).delete()
check(deleted == 0, "other tenant's notes are not deleted", deleted)
tenants = sorted(set(Account.objects.values_list("tenant_id", flat=True)))
check(tenants == [TENANT], "only its own tenant", tenants)

deleted, _ = Note.objects.filter(pk=note.pk).delete()
check(deleted == 1, "delete", deleted)

try:
    with connection.cursor() as cur:
        cur.execute("SELECT * FROM secrets")
    check(False, "uncatalogued table refused", "no error")
except DatabaseError as e:
    code = getattr(e.__cause__, "pgcode", None)
    check(code == "42501" and str(e).startswith("tenantproxy:"), "uncatalogued table refused", [code, str(e)])
check(Account.objects.filter(pk=acc.pk).count() == 1, "session usable after refusal")
