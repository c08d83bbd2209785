# Copyright: ntsops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

# This doc fragment is private to the collection: it may change at any time.

from __future__ import annotations


class ModuleDocFragment(object):
    # The TSIG key (RFC 8945) that signs dynamic updates and the queries sent with them.
    DOCUMENTATION = r"""
options:
  key_name:
    description: Name of the TSIG key. Required with O(key_secret); selects a key in O(key_file) holding several.
    type: str
  key_secret:
    description: Base64 TSIG secret. Mutually exclusive with O(key_file).
    type: str
  key_algorithm:
    description: TSIG algorithm for O(key_secret). V(hmac-sha1) and V(hmac-md5) only for old servers.
    type: str
    choices: [hmac-sha256, hmac-sha224, hmac-sha384, hmac-sha512, hmac-sha1, hmac-md5]
    default: hmac-sha256
  key_file:
    description: A key file in BIND's format (as written by C(tsig-keygen)), read on the managed host.
    type: path
"""
