# Copyright: ntsops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

# This doc fragment is private to the collection: it may change at any time.

from __future__ import annotations


class ModuleDocFragment(object):
    # Options of the modules that open TLS to an NTS server or check its certificate
    # (endpoint_check, cert_check, cookie_check). The minimum versions are those of
    # Debian 12's packages, which the code in plugins/module_utils/_check and
    # _net/tls.py keeps working with.
    DOCUMENTATION = r"""
options:
  ca_path:
    description:
      - PEM bundle of trusted CA certificates.
      - When not set, the system trust store is used, as clients do by default.
    type: path
  timeout:
    description: Seconds allowed for each network step (TCP connect, TLS handshake, and what follows it).
    type: float
    default: 5
requirements:
  - pyOpenSSL >= 23 (TLS 1.3 connections and chain verification; Debian 12's python3-openssl)
  - service-identity >= 21.1 (certificate name checks by RFC 6125; Debian 12's python3-service-identity)
"""

    # The certificate-lifetime threshold of the modules that judge a certificate
    # (endpoint_check, cert_check).
    CERT_DAYS = r"""
options:
  min_cert_days:
    description: Report a problem when the certificate expires in fewer days than this.
    type: int
    default: 14
"""

    # The NTS-KE server a module talks to (endpoint_check, cookie_check); the argument
    # spec is NTS_KE_TARGET_ARGS in plugins/module_utils/_check/module_args.py.
    NTS_KE_TARGET = r"""
options:
  name:
    description:
      - The NTS-KE host name clients are configured with. An IP address is allowed;
        the certificate must then carry it as an IP subject alternative name.
    type: str
    required: true
  port:
    description: The NTS-KE TCP port.
    type: int
    default: 4460
  aead:
    description: AEAD algorithm ids to offer, in order of preference (15 is AEAD_AES_SIV_CMAC_256).
    type: list
    elements: int
    default: [15]
"""
