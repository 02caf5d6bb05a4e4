"""Runs one command of the published Trends.Earth CLI (`trends`) against a chosen API.

    python drive.py --api URL --home DIR [--answer TEXT ...] COMMAND [ARGS...]

The CLI's address is fixed in its code and its configuration lives in ~/.gef.yml, so this
points the one at the API under test and the other at DIR. Its prompts (project name,
e-mail, password, "are you sure") read the --answer values in order. PyYAML 6 needs a
loader where the CLI calls yaml.load without one: the safe loader, which reads what it writes.
"""
import argparse
import builtins
import functools
import getpass
import os

parser = argparse.ArgumentParser()
parser.add_argument('--api', required=True)
parser.add_argument('--home', required=True)
parser.add_argument('--answer', action='append', default=[])
parser.add_argument('command', nargs=argparse.REMAINDER)
args = parser.parse_args()

# The CLI reads its configuration file's path from HOME when it is imported.
os.environ['HOME'] = args.home
config_file = os.path.join(args.home, '.gef.yml')
if not os.path.exists(config_file):
    open(config_file, 'w').close()

import yaml  # noqa: E402

yaml.load = functools.partial(yaml.load, Loader=yaml.SafeLoader)

answers = iter(args.answer)


def answer(prompt=''):
    value = next(answers)
    print(prompt + ('*' * len(value) if 'password' in prompt.lower() else value))
    return value


builtins.input = answer
getpass.getpass = answer

import fire  # noqa: E402
from tecli.commands import Commands  # noqa: E402
from tecli.configuration import SETTINGS  # noqa: E402

SETTINGS['url_api'] = args.api
fire.Fire(Commands, command=args.command, name='trends')
