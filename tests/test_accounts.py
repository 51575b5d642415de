"""Accounts of the web app: salted hashes, sign-in, brand access, and `adgen users add` input errors."""

import subprocess
import sys

import pytest
from sqlalchemy import func, select

from adgen import records
from adgen.accounts import AccessError, authenticate, brands_of, campaign_of, check_password, hash_password
from adgen.records import open_db
from adgen.settings import get_settings
from tests.conftest import REPO, adgen


def test_passwords_are_stored_salted_and_checked():
    a, b = hash_password("correct horse"), hash_password("correct horse")
    assert a != b and "correct horse" not in a  # a fresh salt each time, never the password itself
    assert check_password("correct horse", a) and not check_password("correct hors", a)


def test_users_add_grants_brands_and_signs_in():
    result = adgen("users", "add", "alice", "--brand", "Northwind Coffee", "--brand", "Contoso Tea",
                   env={"ADGEN_PASSWORD": "a-long-password"})
    assert "Northwind Coffee, Contoso Tea" in result.stdout
    db = open_db(get_settings())
    with db() as s:
        assert authenticate(s, "alice", "a-long-password")
        assert not authenticate(s, "alice", "a-wrong-password") and not authenticate(s, "mallory", "a-long-password")
        assert [b.name for b in brands_of(s, "alice")] == ["Contoso Tea", "Northwind Coffee"]
        stored = s.scalar(select(records.User.password_hash))
        assert stored.startswith("scrypt$") and "a-long-password" not in stored
        with pytest.raises(AccessError, match="^no campaign 'no-such-id'$"):
            campaign_of(s, "alice", "no-such-id")


def test_users_add_refuses_bad_input_and_writes_nothing():
    short = adgen("users", "add", "bob", "--brand", "Contoso Tea", env={"ADGEN_PASSWORD": "short"}, check=False)
    assert short.returncode == 2 and "password: use at least 8 characters" in short.stderr
    bad_name = adgen("users", "add", "bob smith", "--brand", "Contoso Tea", env={"ADGEN_PASSWORD": "a-long-password"},
                     check=False)
    assert bad_name.returncode == 2 and "user name 'bob smith'" in bad_name.stderr
    with open_db(get_settings())() as s:
        assert s.scalar(select(func.count()).select_from(records.User)) == 0
        assert s.scalar(select(func.count()).select_from(records.Brand)) == 0


def test_stdin_password_for_scripts():
    subprocess.run([sys.executable, "-m", "adgen", "users", "add", "carol", "--brand", "Fabrikam", "--password-stdin"],
                   input="from-stdin-123\n", text=True, cwd=REPO, check=True, capture_output=True)
    with open_db(get_settings())() as s:
        assert authenticate(s, "carol", "from-stdin-123")
