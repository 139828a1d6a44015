"""`bblogin aws config`: print the AWS config profile whose ``credential_process`` runs `bblogin
aws` with these options, by bblogin's absolute path (botocore runs it without a shell).

In a Pipelines step it also checks ``--duration`` against the step token, here: botocore shows a
credential_process's stderr only when it fails, so `bblogin aws`'s own drift warning never
reaches the step log when the AWS CLI or an SDK runs it (docs/pipelines.md)."""

from __future__ import annotations

import argparse
import os
import re
import sys

from bblogin._claims import unverified_claims
from bblogin._commandline import bblogin_command, command_line
from bblogin._commands._common import say
from bblogin._commands.aws import drift, duration_of, require_role
from bblogin._errors import UsageError
from bblogin._exchange import PIPELINES_ENV

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}")
# (option, attribute) in the order they are written
_OPTIONS = (("--profile", "profile"), ("--account", "account"), ("--role-arn", "role_arn"), ("--duration", "duration"), ("--session-name", "session_name"), ("--from-env", "from_env"), ("--sts-endpoint", "sts_endpoint"))


def run(args: argparse.Namespace) -> int:
    require_role(args)
    duration = duration_of(args)
    if not _NAME.fullmatch(args.name):
        raise UsageError(f"--name {args.name!r} is not an AWS profile name (letters, digits, _ . + -)")
    words = [*bblogin_command(), "aws"]
    for option, attr in _OPTIONS:
        value = getattr(args, attr, None)
        if value is not None:
            words += [option, str(value)]
    line = command_line(words)
    variable = args.from_env or PIPELINES_ENV
    token = os.environ.get(variable, "")
    # a CI token bblogin cannot renew: say here what `bblogin aws` would say unseen (an expired one fails)
    warning = drift(unverified_claims(token) or {}, duration, variable) if token else None
    sys.stdout.write(f"[profile {args.name}]\ncredential_process = {line}\n")
    if warning:
        say(warning)
    return 0
