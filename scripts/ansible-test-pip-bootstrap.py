"""Offline stand-in for the pip bootstrap script ansible-test downloads.

ansible-test creates its sanity virtual environments without pip and runs a
get-pip script from its own download host, which this network cannot reach. This
script does the same job from what Python ships: ensurepip installs the bundled
pip, then pip installs the exact packages ansible-test asked for from PyPI.
make copies it to the cache path ansible-test looks in (~/.ansible/test/cache).
"""

import subprocess
import sys

# Options that only the real get-pip script understands: they ask it not to add
# setuptools or wheel, which a plain `pip install` of named packages never adds.
GET_PIP_ONLY_OPTIONS = {"--no-setuptools", "--no-wheel"}


def main() -> int:
    # In a child process: ensurepip.bootstrap() would point PIP_CONFIG_FILE at
    # /dev/null in this process, hiding the machine's pip configuration (its
    # trust store among it) from the install below.
    subprocess.check_call([sys.executable, "-m", "ensurepip"])
    arguments = [arg for arg in sys.argv[1:] if arg not in GET_PIP_ONLY_OPTIONS]
    # The arguments are ansible-test's own pip request, not outside input.
    return subprocess.call([sys.executable, "-m", "pip", "install", "--quiet", *arguments])  # noqa: S603


if __name__ == "__main__":
    sys.exit(main())
