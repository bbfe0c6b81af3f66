"""Rollback safety: a table of small migration files across frameworks, reversible or not and why."""
# ruff: noqa: E501  (the table keeps each migration file on the lines of its case)

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from releaserisk.config import DEFAULT_MIGRATION_GLOBS
from releaserisk.migrations_safety import classify_migration, glob_regex, is_migration, migration_framework

ALEMBIC_HEAD = "from alembic import op\nimport sqlalchemy as sa\n\nrevision = 'ab12'\n\n"

# (path, content, framework, expected reasons (empty: reversible))
CASES = [
    # plain SQL / Flyway / golang-migrate / Prisma
    ("migrations/0042.sql", "ALTER TABLE users DROP COLUMN email;", "sql",
     ["drops column users.email in migrations/0042.sql"]),
    ("migrations/0043.sql", "CREATE TABLE audit (id bigint primary key);\nCREATE INDEX audit_id ON audit (id);", "sql", []),
    ("migrations/0044.sql", "ALTER TABLE users ADD COLUMN nickname text;", "sql", []),
    ("migrations/0045.sql", "ALTER TABLE users ADD COLUMN tier text NOT NULL;", "sql",
     ["adds NOT NULL column users.tier without a default in migrations/0045.sql"]),
    ("migrations/0046.sql", "ALTER TABLE users ADD COLUMN tier text NOT NULL DEFAULT 'free';", "sql", []),
    ("db/migration/V3__rename.sql", "ALTER TABLE orders RENAME COLUMN total TO amount;", "flyway",
     ["renames column orders.total to amount in db/migration/V3__rename.sql"]),
    ("db/migration/V4__type.sql", "ALTER TABLE orders ALTER COLUMN amount TYPE numeric(12,2);", "flyway",
     ["changes the type of column orders.amount in db/migration/V4__type.sql"]),
    ("db/migration/V5__drop.sql", "DROP TABLE IF EXISTS legacy_sessions;", "flyway",
     ["drops table legacy_sessions in db/migration/V5__drop.sql"]),
    ("sql/V6__purge.sql", "DELETE FROM events WHERE created_at < now() - interval '1 year';", "flyway",
     ["deletes rows of events in sql/V6__purge.sql"]),
    ("migrate/000007_users.up.sql", "ALTER TABLE users RENAME TO accounts;", "golang-migrate",
     ["renames table users to accounts in migrate/000007_users.up.sql"]),
    ("prisma/migrations/20240601_init/migration.sql",
     'ALTER TABLE "Post" DROP COLUMN "views";\nALTER TABLE "Post" ALTER COLUMN "title" SET NOT NULL;', "prisma",
     ["drops column Post.views in prisma/migrations/20240601_init/migration.sql",
      "makes column Post.title NOT NULL in prisma/migrations/20240601_init/migration.sql"]),
    ("migrations/0047.sql", "-- ALTER TABLE users DROP COLUMN email;\nCREATE TABLE t (id int);", "sql", []),
    ("migrations/0048.sql", "ALTER TABLE users DROP CONSTRAINT users_email_key;", "sql", []),
    ("migrations/0049.sql", "TRUNCATE TABLE carts;", "sql", ["deletes rows of carts in migrations/0049.sql"]),
    # Alembic
    ("alembic/versions/ab12_drop.py", ALEMBIC_HEAD + "def upgrade():\n    op.drop_column('users', 'email')\n\n"
     "def downgrade():\n    op.add_column('users', sa.Column('email', sa.String()))\n", "alembic",
     ["drops column users.email in alembic/versions/ab12_drop.py"]),
    ("alembic/versions/ab13_add.py", ALEMBIC_HEAD + "def upgrade():\n    op.add_column('users', sa.Column('age', sa.Integer(), "
     "nullable=True))\n\ndef downgrade():\n    op.drop_column('users', 'age')\n", "alembic", []),
    ("alembic/versions/ab14_notnull.py", ALEMBIC_HEAD + "def upgrade():\n    op.add_column('users', sa.Column('plan', "
     "sa.String(), nullable=False))\n", "alembic",
     ["adds NOT NULL column users.plan without a default in alembic/versions/ab14_notnull.py"]),
    ("alembic/versions/ab15_alter.py", ALEMBIC_HEAD + "def upgrade():\n    op.alter_column('users', 'name', "
     "new_column_name='full_name')\n    op.execute('DELETE FROM sessions')\n", "alembic",
     ["renames column users.name to full_name in alembic/versions/ab15_alter.py",
      "deletes rows of sessions in alembic/versions/ab15_alter.py"]),
    # Django
    ("shop/migrations/0012_remove_email.py", "from django.db import migrations\n\nclass Migration(migrations.Migration):\n"
     "    operations = [\n        migrations.RemoveField(model_name='customer', name='email'),\n    ]\n", "django",
     ["drops column customer.email in shop/migrations/0012_remove_email.py"]),
    ("shop/migrations/0013_add_note.py", "operations = [\n    migrations.AddField(model_name='order', name='note', "
     "field=models.TextField(null=True, blank=True)),\n]\n", "django", []),
    ("shop/migrations/0014_add_code.py", "operations = [\n    migrations.AddField(model_name='order', name='code', "
     "field=models.CharField(max_length=8)),\n]\n", "django",
     ["adds NOT NULL column order.code without a default in shop/migrations/0014_add_code.py"]),
    ("shop/migrations/0015_data.py", "operations = [\n    migrations.RunPython(forwards),\n]\n", "django",
     ["runs Python code without reverse_code (Django cannot reverse it) in shop/migrations/0015_data.py"]),
    ("shop/migrations/0016_data.py", "operations = [\n    migrations.RunPython(forwards, backwards),\n    "
     "migrations.DeleteModel(name='Coupon'),\n]\n", "django",
     ["drops table Coupon in shop/migrations/0016_data.py"]),
    # Rails
    ("db/migrate/20240601_remove_email.rb", "class RemoveEmail < ActiveRecord::Migration[7.1]\n  def change\n"
     "    remove_column :users, :email, :string\n  end\nend\n", "rails",
     ["drops column users.email in db/migrate/20240601_remove_email.rb"]),
    ("db/migrate/20240602_add_age.rb", "class AddAge < ActiveRecord::Migration[7.1]\n  def change\n"
     "    add_column :users, :age, :integer\n    add_index :users, :age\n  end\nend\n", "rails", []),
    ("db/migrate/20240603_rename.rb", "class R < ActiveRecord::Migration[7.1]\n  def up\n    rename_column :users, :name, "
     ":full_name\n  end\n\n  def down\n    remove_column :users, :full_name\n  end\nend\n", "rails",
     ["renames column users.name to full_name in db/migrate/20240603_rename.rb"]),
    ("db/migrate/20240604_plan.rb", "def change\n  add_column :users, :plan, :string, null: false\nend\n", "rails",
     ["adds NOT NULL column users.plan without a default in db/migrate/20240604_plan.rb"]),
    ("db/migrate/20240605_plan.rb", "def change\n  add_column :users, :plan, :string, null: false, default: 'free'\n"
     "end\n", "rails", []),
    # Liquibase
    ("db/changelog/changes.xml", '<databaseChangeLog>\n  <changeSet id="1" author="a">\n    '
     '<dropColumn tableName="person" columnName="nickname"/>\n  </changeSet>\n</databaseChangeLog>\n', "liquibase",
     ["drops column person.nickname in db/changelog/changes.xml"]),
    ("db/changelog/add.yaml", "databaseChangeLog:\n  - changeSet:\n      id: 2\n      changes:\n        - addColumn:\n"
     "            tableName: person\n            columns:\n              - column:\n                  name: city\n"
     "                  type: varchar(50)\n", "liquibase", []),
    ("db/changelog/types.xml", '<changeSet id="3" author="a"><modifyDataType columnName="id" newDataType="bigint" '
     'tableName="person"/><rollback><dropTable tableName="person"/></rollback></changeSet>', "liquibase",
     ["changes the type of column person.id in db/changelog/types.xml"]),
]  # fmt: skip


@pytest.mark.parametrize(("path", "text", "framework", "reasons"), CASES, ids=[c[0] for c in CASES])
def test_classification_table(path, text, framework, reasons):
    finding = classify_migration(path, text)
    assert finding.framework == framework
    assert list(finding.reasons) == reasons
    assert finding.reversible is (not reasons)
    assert is_migration(path, DEFAULT_MIGRATION_GLOBS), path


def test_table_is_broad():
    assert len(CASES) >= 20
    assert len({c[2] for c in CASES}) >= 7
    assert sum(not c[3] for c in CASES) >= 8


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("src/app.py", False), ("migrate/000007_users.down.sql", False), ("db/migration/U3__undo.sql", False),
        ("README.md", False), ("shop/migrations/__init__.py", False), ("services/a/migrations/0001_init.sql", True),
        ("db/migrate/20240101_x.rb", True), ("app/db/migration/V1__init.sql", True),
    ],
)  # fmt: skip
def test_detection_by_path(path, expected):
    assert is_migration(path, DEFAULT_MIGRATION_GLOBS) is expected


def test_configurable_globs():
    assert is_migration("schema/changes/001.sql", ("schema/changes/*.sql",))
    assert not is_migration("schema/changes/001.sql", DEFAULT_MIGRATION_GLOBS)


def test_framework_from_content():
    assert migration_framework("changes/001.sql", "--liquibase formatted sql\n") == "liquibase"
    text = (
        "--liquibase formatted sql\n--changeset a:1\nALTER TABLE t ADD COLUMN c int;\n"
        "--rollback ALTER TABLE t DROP COLUMN c;\n"
    )
    assert classify_migration("changes/001.sql", text).reversible


@given(st.lists(st.sampled_from(["**/", "*", "a", ".", "[0-9]", "/", "_", "-"]), min_size=1, max_size=8).map("".join))
def test_glob_regex_always_compiles(glob):
    import re

    re.compile(glob_regex([glob]))


@given(st.text(max_size=200))
def test_classifier_never_crashes(text):
    paths = ("m/0001.sql", "alembic/versions/a.py", "x/migrations/0001_a.py", "db/migrate/1.rb", "db/changelog/a.xml")
    for path in paths:
        finding = classify_migration(path, text)
        assert finding.reversible is (not finding.reasons)
