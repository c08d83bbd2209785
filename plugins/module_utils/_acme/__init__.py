# Copyright: ntsops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""ACME certificates for NTS servers: certbot's renewal margin, its failures, the deploy step."""
