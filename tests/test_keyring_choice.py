"""Which keyring the full path reads: exactly the one keyring itself would, however it is chosen.

``SecretStore.get`` reads the Secret Service with bblogin's own D-Bus client only when keyring
would use keyring's Secret Service backend as it sets it up by itself (``_keyring.can_read_directly``);
else it goes through keyring. Each case runs two fresh processes with the same environment —
bblogin's read, and ``keyring.get_password`` alone — against the real Secret Service holding the
token, and both must give the same answer; the case also says whether bblogin read directly.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import pytest

from bblogin._store import SecretStore

SECRET_SERVICE = "keyring.backends.SecretService.Keyring"
NULL = "keyring.backends.null.Keyring"  # keyring's own "no keyring": reads find nothing
LOGIN = "/org/freedesktop/secrets/collection/login"

OURS = (
    "import json, sys\n"
    "from bblogin._store import SecretStore, _keyring\n"
    "direct = _keyring.can_read_directly()\n"
    "value = SecretStore('keyring').get('acct1', 'id_token')\n"
    "print(json.dumps([direct, value, 'keyring' in sys.modules]))\n"
)
THEIRS = "import json, keyring; print(json.dumps(keyring.get_password('bblogin', 'acct1/id_token')))"

CASES = {
    # name: (PYTHON_KEYRING_BACKEND, keyringrc.cfg's default-keyring, KEYRING_PROPERTY_*, bblogin reads directly)
    "keyring's own choice (no variable, no keyringrc.cfg)": (None, None, {}, True),
    "PYTHON_KEYRING_BACKEND names the Secret Service": (SECRET_SERVICE, None, {}, True),
    "PYTHON_KEYRING_BACKEND names another backend": (NULL, None, {}, False),
    "keyringrc.cfg names another backend": (None, NULL, {}, False),
    "keyringrc.cfg names the Secret Service": (None, SECRET_SERVICE, {}, True),
    "PYTHON_KEYRING_BACKEND wins over keyringrc.cfg": (SECRET_SERVICE, NULL, {}, True),
    "keyringrc.cfg loses to PYTHON_KEYRING_BACKEND naming another": (NULL, SECRET_SERVICE, {}, False),
    "KEYRING_PROPERTY_ sets the backend's collection": (SECRET_SERVICE, None, {"KEYRING_PROPERTY_PREFERRED_COLLECTION": LOGIN}, False),
}


@pytest.mark.parametrize("case", list(CASES))
def test_the_full_path_reads_what_keyring_would(keyring_secret_service, tmp_path: pathlib.Path, case: str) -> None:
    SecretStore("keyring").set("acct1", "id_token", "the-stored-token")
    variable, configured, properties, direct = CASES[case]
    env = {k: v for k, v in os.environ.items() if k != "PYTHON_KEYRING_BACKEND" and not k.startswith("KEYRING_PROPERTY_")}
    env.update(properties, XDG_CONFIG_HOME=str(tmp_path / "xdg"))
    if variable:
        env["PYTHON_KEYRING_BACKEND"] = variable
    if configured:
        rc = tmp_path / "xdg" / "python_keyring" / "keyringrc.cfg"
        rc.parent.mkdir(parents=True)
        rc.write_text(f"[backend]\ndefault-keyring = {configured}\n")

    def run(code: str) -> object:
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    read_directly, ours, imported_keyring = run(OURS)  # type: ignore[misc]
    theirs = run(THEIRS)
    assert ours == theirs, case
    assert read_directly is direct and imported_keyring is not direct, case
    assert ours == ("the-stored-token" if (variable or configured) != NULL else None), case


# Records, per D-Bus connection, the first message each sends to the Secret Service, around one
# store, read through keyring, and delete (keyring opens a connection for every call).
FIRST_MESSAGES = (
    "import json, sys\n"
    "import jeepney.io.blocking as blocking\n"
    "first = {}\n"
    "send = blocking.DBusConnection.send_message\n"
    "def recording(self, message, serial=None):\n"
    "    f = message.header.fields\n"
    "    if f.get(jeepney.HeaderFields.destination) == 'org.freedesktop.secrets':\n"
    "        first.setdefault(id(self), [str(f.get(jeepney.HeaderFields.path)), f.get(jeepney.HeaderFields.member), list(message.body)])\n"
    "    return send(self, message, serial)\n"
    "import jeepney\n"
    "blocking.DBusConnection.send_message = recording\n"
    "{setup}\n"
    "kr.set_password('bblogin', 'acct1/access_token', 'stored')\n"
    "assert kr.get_password('bblogin', 'acct1/access_token') == 'stored'\n"
    "kr.delete_password('bblogin', 'acct1/access_token')\n"
    "print(json.dumps(list(first.values())))\n"
)
GREETING = ["/org/freedesktop/secrets", "Get", ["org.freedesktop.Secret.Service", "Collections"]]


def test_every_keyring_connection_asks_for_the_services_collections_before_anything_else(keyring_secret_service) -> None:
    """gnome-keyring 42 aborts on a collection's or item's property Get from a caller it has not
    registered yet (``_keyring.greet_first``), and secretstorage's first message on a connection is
    the collection's Label: through bblogin's backend, every connection first gets the service's
    Collections answered. The second run shows what keyring alone sends first, so this test would
    fail with the greeting removed."""

    def first_messages(setup: str) -> list[list[object]]:
        done = subprocess.run([sys.executable, "-c", FIRST_MESSAGES.replace("{setup}", setup)], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    ours = first_messages("from bblogin._store import _keyring\nkr = _keyring.backend()")
    assert len(ours) >= 3 and all(m == GREETING for m in ours), ours
    theirs = first_messages("import keyring\nkr = keyring.get_keyring()")
    assert theirs and all(m[1] == "Get" and m[2] == ["org.freedesktop.Secret.Collection", "Label"] for m in theirs), theirs
