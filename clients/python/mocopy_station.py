#!/usr/bin/env python3
"""A mocopy station client written from docs/protocol.md alone: it shares no code with mocopy.

    mocopy_station.py --center URL --key-file FILE --content ID --medium-id HEX --scheme a|b
        requests a license, verifies the response MAC, unwraps what the station must unwrap, checks the
        certificate (scheme A) or E_Mid (scheme B) against the medium ID, prints the license as JSON
        (scheme B with the transit seal removed, as a station stores it) and exits 0.
    mocopy_station.py --self-test docs/vectors/center-protocol.json
        checks every primitive of this file against the published test vectors.

Python 3.9+ standard library and the `cryptography` package (Debian: python3-cryptography) only.
Exit codes: 0 license verified / self-test passed; 1 self-test failed or internal error; 2 usage (arguments, key
file); 5 refused by the center, or an answer or license that does not verify; 7 the center could not be reached or
answered 5xx after retries. On a refusal the first word on stderr after the program name is the center's code.
No key is ever printed.
"""

import argparse
import hashlib
import hmac
import http.client
import json
import os
import re
import secrets
import ssl
import stat
import struct
import sys
import time
import urllib.parse
import uuid

try:
    from cryptography.hazmat.primitives.ciphers import algorithms
    from cryptography.hazmat.primitives.cmac import CMAC
    from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap, aes_key_wrap
except ImportError:  # pragma: no cover - depends on the machine
    sys.stderr.write("mocopy_station: E_NO_CRYPTOGRAPHY: the Python package `cryptography` is missing "
                     "(Debian/Ubuntu: apt-get install python3-cryptography; elsewhere: pip install cryptography)\n")
    sys.exit(2)

PROG = "mocopy_station"
EXIT_OK, EXIT_INTERNAL, EXIT_USAGE, EXIT_REFUSED, EXIT_UNAVAILABLE = 0, 1, 2, 5, 7

# docs/protocol.md section 6 and 2: shapes.
STATION_ID = re.compile(r"^[A-Za-z0-9-]{1,64}$")
HEX64 = re.compile(r"^[0-9a-f]{64}$")
CONTENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
MEDIUM_ID = re.compile(r"^(?:[0-9a-f]{2}){1,64}$")
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
LICENSE_ID = re.compile(r"^lic-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
ERROR_CODE = re.compile(r"^E_[A-Z0-9_]{1,60}$")

# docs/protocol.md section 10: the public constant behind E_Mid (32 bytes, the final '.' included).
C_MID = "mocopy medium-id binding key v1.".encode("utf-8")
PAIR_TAG = "mocopy/pair/v1".encode("utf-8")


class Failure(Exception):
    def __init__(self, code, message, exit_code):
        super().__init__(message)
        self.code = code
        self.message = message
        self.exit_code = exit_code


# ---------------------------------------------------------------- primitives (sections 3, 4, 5)

def aes_cmac(key, message):
    c = CMAC(algorithms.AES(key))
    c.update(message)
    return c.finalize()


def kdf(key, label, context, length_bits=256):
    """SP 800-108 counter mode, PRF AES-CMAC: K(i) = CMAC(KI, [i]32 || label || 00 || context || [L]32), i from 1."""
    if length_bits <= 0 or length_bits % 8:
        raise ValueError("L must be a positive multiple of 8 bits")
    fixed = label.encode("utf-8") + b"\x00" + bytes(context) + struct.pack(">I", length_bits)
    out = b""
    i = 1
    while len(out) * 8 < length_bits:
        out += aes_cmac(key, struct.pack(">I", i) + fixed)
        i += 1
    return out[: length_bits // 8]


def sha256_hex(data):
    return hashlib.sha256(data).hexdigest()


def request_mac_input(method, path, timestamp, nonce, body):
    return "\n".join([method.upper(), path, timestamp, nonce, sha256_hex(body)])


def request_mac(ku, station_id, method, path, timestamp, nonce, body):
    k = kdf(ku, "mocopy/http/request", station_id.encode("utf-8"))
    return hmac.new(k, request_mac_input(method, path, timestamp, nonce, body).encode("utf-8"), hashlib.sha256).hexdigest()


def response_mac_input(status, nonce, body):
    return "\n".join([str(status), nonce, sha256_hex(body)])


def response_mac(ku, station_id, status, nonce, body):
    k = kdf(ku, "mocopy/http/response", station_id.encode("utf-8"))
    return hmac.new(k, response_mac_input(status, nonce, body).encode("utf-8"), hashlib.sha256).hexdigest()


def transit_key(ku, station_id):
    return kdf(ku, "mocopy/http/transit", station_id.encode("utf-8"))


def medium_binding_key(mid):
    return kdf(C_MID, "mocopy/B/Mid", mid)


def enc_pair(mid, content_id):
    sid = content_id.encode("utf-8")
    return PAIR_TAG + struct.pack(">H", len(mid)) + mid + struct.pack(">H", len(sid)) + sid


def unwrap(kek, wrapped, what):
    try:
        return aes_key_unwrap(kek, wrapped)
    except (InvalidUnwrap, ValueError):
        raise Failure("E_LICENSE_CHECK", "%s does not unwrap (wrong key, another disc or station, or altered)" % what, EXIT_REFUSED)


# ---------------------------------------------------------------- key file (section 2)

def read_key_file(path):
    try:
        st = os.stat(path)
    except OSError as e:
        raise Failure("E_STATION_KEY", "cannot read the station key file %s: %s" % (path, e.strerror), EXIT_USAGE)
    if os.name == "posix" and st.st_mode & 0o077:
        raise Failure("E_STATION_KEY", "the station key file %s is readable by other users (mode %o): run `chmod 600 %s`"
                      % (path, stat.S_IMODE(st.st_mode), path), EXIT_USAGE)
    try:
        with open(path, "r", encoding="utf-8") as f:
            o = json.load(f)
    except (OSError, ValueError):
        raise Failure("E_STATION_KEY", "%s is not a station key file (not JSON)" % path, EXIT_USAGE)
    ok = (isinstance(o, dict) and o.get("format") == "mocopy-station-key" and type(o.get("version")) is int and o.get("version") == 1
          and isinstance(o.get("stationId"), str) and STATION_ID.match(o["stationId"]) is not None
          and isinstance(o.get("centerId"), str) and isinstance(o.get("key"), str) and HEX64.match(o["key"]) is not None)
    if not ok:
        raise Failure("E_STATION_KEY", "%s is not a valid station key file (format mocopy-station-key, version 1)" % path, EXIT_USAGE)
    return o["stationId"], o["centerId"], bytes.fromhex(o["key"])


# ---------------------------------------------------------------- HTTP (sections 1, 6, 7, 13)

def clean(text, limit=300):
    """The center's words, shown to a person: no control characters, bounded."""
    return "".join(ch if ch.isprintable() else "?" for ch in str(text))[:limit]


class Center:
    def __init__(self, url, station_id, ku, cafile=None, timeout=15.0, attempts=4):
        u = urllib.parse.urlsplit(url)
        if u.scheme not in ("http", "https") or not u.hostname:
            raise Failure("E_USAGE", "--center must be an http:// or https:// URL", EXIT_USAGE)
        if u.path not in ("", "/") or u.query or u.fragment:
            raise Failure("E_USAGE", "--center is the center's base URL, with no path or query (e.g. http://127.0.0.1:7443)", EXIT_USAGE)
        self.url, self.u = url, u
        self.station_id, self.ku = station_id, ku
        self.timeout, self.attempts = timeout, attempts
        self.context = ssl.create_default_context(cafile=cafile) if u.scheme == "https" else None

    def _connection(self):
        port = self.u.port
        if self.u.scheme == "https":
            return http.client.HTTPSConnection(self.u.hostname, port or 443, timeout=self.timeout, context=self.context)
        return http.client.HTTPConnection(self.u.hostname, port or 80, timeout=self.timeout)

    def call(self, method, path, body=b""):
        """One authenticated call with retries (same body, fresh nonce and timestamp); returns (status, signed, parsed)."""
        delay = 0.2
        last = "no attempt"
        for attempt in range(1, self.attempts + 1):
            nonce = secrets.token_hex(16)
            timestamp = str(int(time.time() * 1000))
            headers = {
                "content-type": "application/json",
                "x-mocopy-station": self.station_id,
                "x-mocopy-timestamp": timestamp,
                "x-mocopy-nonce": nonce,
                "x-mocopy-mac": request_mac(self.ku, self.station_id, method, path, timestamp, nonce, body),
            }
            conn = self._connection()
            try:
                conn.request(method, path, body=body if method == "POST" else None, headers=headers)
                res = conn.getresponse()
                status, raw = res.status, res.read()
                presented = res.getheader("x-mocopy-response-mac")
            except (OSError, http.client.HTTPException) as e:
                last = "%s: %s" % (type(e).__name__, e)
                status = None
            finally:
                conn.close()
            if status is None or status >= 500:
                if status is not None:
                    last = "HTTP %d %s" % (status, error_code(raw) or "")
                if attempt < self.attempts:
                    time.sleep(delay)
                    delay = min(delay * 2, 2.0)
                    continue
                raise Failure("E_CENTER_UNAVAILABLE", "the license center at %s could not be reached: %s" % (self.url, clean(last)), EXIT_UNAVAILABLE)
            signed = (presented is not None and HEX64.match(presented) is not None
                      and hmac.compare_digest(presented, response_mac(self.ku, self.station_id, status, nonce, raw)))
            try:
                parsed = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, ValueError):
                parsed = None
            if status >= 400:
                err = parsed.get("error") if isinstance(parsed, dict) else None
                code = err.get("code") if isinstance(err, dict) and isinstance(err.get("code"), str) and ERROR_CODE.match(err["code"]) else "E_HTTP_%d" % status
                message = err.get("message") if isinstance(err, dict) else None
                raise Failure(code, "the license center refused (HTTP %d, %s): %s"
                              % (status, "signed" if signed else "unsigned", clean(message if message is not None else raw[:200])), EXIT_REFUSED)
            if not signed:
                raise Failure("E_BAD_RESPONSE_MAC", "the license center's answer (HTTP %d) does not carry a verifying x-mocopy-response-mac: "
                              "altered or replayed on the way, or not from this station's center" % status, EXIT_REFUSED)
            return status, signed, parsed
        raise Failure("E_CENTER_UNAVAILABLE", "the license center at %s could not be reached: %s" % (self.url, clean(last)), EXIT_UNAVAILABLE)


def error_code(raw):
    try:
        return json.loads(raw.decode("utf-8"))["error"]["code"]
    except Exception:
        return None


# ---------------------------------------------------------------- the license (sections 8, 9, 10, 14)

def field(lic, name, pattern=None):
    v = lic.get(name)
    if not isinstance(v, str) or (pattern is not None and re.match(pattern, v) is None):
        raise Failure("E_LICENSE_CHECK", "the license's %s is missing or malformed" % name, EXIT_REFUSED)
    return v


def check_license(lic, ku, station_id, scheme, content_id, mid):
    """Checks a verified 200 answer; returns (license as stored, list of what was verified)."""
    if not isinstance(lic, dict):
        raise Failure("E_LICENSE_CHECK", "the answer is not a JSON object", EXIT_REFUSED)
    for name, want in (("scheme", scheme), ("contentId", content_id), ("mediumId", mid.hex())):
        if lic.get(name) != want:
            raise Failure("E_LICENSE_CHECK", "the license does not answer the request (%s differs)" % name, EXIT_REFUSED)
    field(lic, "licenseId", LICENSE_ID.pattern)
    field(lic, "centerId")
    field(lic, "issuedAt")
    done = ["response MAC (x-mocopy-response-mac under the request's nonce)", "scheme, contentId and mediumId answer the request"]
    out = dict(lic)
    if scheme == "a":
        cs = bytes.fromhex(field(lic, "certificate", r"^[0-9a-f]{32}$"))
        ekc = bytes.fromhex(field(lic, "wrappedCertificationKey", r"^[0-9a-f]{80}$"))
        ekd = bytes.fromhex(field(lic, "wrappedContentKey", r"^[0-9a-f]{80}$"))
        key_c = unwrap(ku, ekc, "EKU(KEYc)")
        if not hmac.compare_digest(aes_cmac(key_c, enc_pair(mid, content_id)), cs):
            raise Failure("E_LICENSE_CHECK", "the certificate CS does not match CS' computed from the medium ID and content ID", EXIT_REFUSED)
        if len(unwrap(ku, ekd, "EKU(Kd)")) != 32:
            raise Failure("E_LICENSE_CHECK", "Kd is not 32 bytes", EXIT_REFUSED)
        done += ["KEYc unwrapped with KU; CS' = AES-CMAC(KEYc, enc(IDk, SIDi)) equals the certificate", "EKU(Kd) unwraps with KU (32-byte Kd)"]
    else:
        tk = transit_key(ku, station_id)
        k_mid = medium_binding_key(mid)
        for name, what in (("wrappedMediumKey", "E_Mid(Ku)"), ("wrappedMasterKey", "E_Mid(Ka)")):
            sealed = bytes.fromhex(field(lic, name, r"^[0-9a-f]{96}$"))
            e_mid = unwrap(tk, sealed, "the transit seal around " + what)
            if len(e_mid) != 40 or len(unwrap(k_mid, e_mid, what + " under the medium ID")) != 32:
                raise Failure("E_LICENSE_CHECK", "%s has the wrong length" % what, EXIT_REFUSED)
            out[name] = e_mid.hex()
        done += ["transit seal removed (48 -> 40 bytes) for E_Mid(Ku) and E_Mid(Ka)", "E_Mid(Ku) and E_Mid(Ka) unwrap under K_Mid of the medium ID (32-byte keys)"]
    return out, done


def request_license(args):
    station_id, _center_id, ku = read_key_file(args.key_file)
    mid_hex = args.medium_id.lower()
    if MEDIUM_ID.match(mid_hex) is None:
        raise Failure("E_USAGE", "--medium-id must be 1-64 bytes of hex", EXIT_USAGE)
    if CONTENT_ID.match(args.content) is None:
        raise Failure("E_USAGE", "--content must be 1-64 characters A-Z a-z 0-9 . _ - starting with a letter or digit", EXIT_USAGE)
    request_id = args.request_id or str(uuid.uuid4())
    if UUID_RE.match(request_id) is None:
        raise Failure("E_USAGE", "--request-id must be a lowercase UUID", EXIT_USAGE)
    center = Center(args.center, station_id, ku, cafile=args.cafile, timeout=args.timeout, attempts=args.attempts)
    body = json.dumps({"requestId": request_id, "scheme": args.scheme, "contentId": args.content, "mediumId": mid_hex},
                      separators=(",", ":")).encode("utf-8")
    _status, _signed, lic = center.call("POST", "/v1/licenses", body)
    license_, done = check_license(lic, ku, station_id, args.scheme, args.content, bytes.fromhex(mid_hex))
    sys.stdout.write(json.dumps(license_, indent=2) + "\n")
    sys.stderr.write("%s: license %s verified:\n" % (PROG, license_["licenseId"]) + "".join("  - %s\n" % d for d in done))
    return EXIT_OK


# ---------------------------------------------------------------- self-test (section 15)

def self_test(path):
    with open(path, "r", encoding="utf-8") as f:
        v = json.load(f)
    fails = []
    counts = {}
    h = bytes.fromhex

    def expect(section, i, name, got, want):
        if got != want:
            fails.append("%s[%d].%s: computed %s, the vector says %s" % (section, i, name, got, want))

    for i, c in enumerate(v["kdf"]):
        fixed = c["label"].encode("utf-8") + b"\x00" + h(c["context"]) + struct.pack(">I", c["lengthBits"])
        expect("kdf", i, "prfInput1", (struct.pack(">I", 1) + fixed).hex(), c["prfInput1"])
        expect("kdf", i, "output", kdf(h(c["key"]), c["label"], h(c["context"]), c["lengthBits"]).hex(), c["output"])
    for i, c in enumerate(v["requestMac"]):
        ku, body = h(c["stationKey"]), c["body"].encode("utf-8")
        expect("requestMac", i, "macKey", kdf(ku, "mocopy/http/request", c["stationId"].encode("utf-8")).hex(), c["macKey"])
        expect("requestMac", i, "bodySha256", sha256_hex(body), c["bodySha256"])
        expect("requestMac", i, "macInput", request_mac_input(c["method"], c["path"], c["timestamp"], c["nonce"], body), c["macInput"])
        expect("requestMac", i, "mac", request_mac(ku, c["stationId"], c["method"], c["path"], c["timestamp"], c["nonce"], body), c["mac"])
    for i, c in enumerate(v["responseMac"]):
        ku, body = h(c["stationKey"]), c["body"].encode("utf-8")
        expect("responseMac", i, "macKey", kdf(ku, "mocopy/http/response", c["stationId"].encode("utf-8")).hex(), c["macKey"])
        expect("responseMac", i, "bodySha256", sha256_hex(body), c["bodySha256"])
        expect("responseMac", i, "macInput", response_mac_input(c["status"], c["nonce"], body), c["macInput"])
        expect("responseMac", i, "mac", response_mac(ku, c["stationId"], c["status"], c["nonce"], body), c["mac"])
    for i, c in enumerate(v["transit"]):
        tk = transit_key(h(c["stationKey"]), c["stationId"])
        expect("transit", i, "transitKey", tk.hex(), c["transitKey"])
        expect("transit", i, "unwrapped", aes_key_unwrap(tk, h(c["wrapped"])).hex(), c["unwrapped"])
        expect("transit", i, "wrapped", aes_key_wrap(tk, h(c["unwrapped"])).hex(), c["wrapped"])
    for i, c in enumerate(v["certificate"]):
        mid, ku = h(c["mediumId"]), h(c["stationKey"])
        pair = enc_pair(mid, c["contentId"])
        expect("certificate", i, "pairEncoding", pair.hex(), c["pairEncoding"])
        expect("certificate", i, "certificationKey", kdf(h(c["centerSecret"]), "mocopy/A/KEYc", pair).hex(), c["certificationKey"])
        key_c = aes_key_unwrap(ku, h(c["wrappedCertificationKey"]))
        expect("certificate", i, "unwrapped KEYc", key_c.hex(), c["certificationKey"])
        expect("certificate", i, "certificate", aes_cmac(key_c, pair).hex(), c["certificate"])
        expect("certificate", i, "contentKey", kdf(h(c["masterKey"]), "mocopy/B/Ka", c["contentId"].encode("utf-8")).hex(), c["contentKey"])
        expect("certificate", i, "wrappedContentKey", aes_key_wrap(ku, h(c["contentKey"])).hex(), c["wrappedContentKey"])
    for i, c in enumerate(v["mediumKey"]):
        mid, km = h(c["mediumId"]), h(c["masterKey"])
        k_mid = medium_binding_key(mid)
        expect("mediumKey", i, "mediumBindingKey", k_mid.hex(), c["mediumBindingKey"])
        expect("mediumKey", i, "mediumKey", kdf(km, "mocopy/B/Ku", mid).hex(), c["mediumKey"])
        expect("mediumKey", i, "contentKey", kdf(km, "mocopy/B/Ka", c["contentId"].encode("utf-8")).hex(), c["contentKey"])
        expect("mediumKey", i, "wrappedMediumKey", aes_key_wrap(k_mid, h(c["mediumKey"])).hex(), c["wrappedMediumKey"])
        expect("mediumKey", i, "wrappedMasterKey", aes_key_wrap(k_mid, h(c["contentKey"])).hex(), c["wrappedMasterKey"])
        expect("mediumKey", i, "unwrapped Ku", aes_key_unwrap(k_mid, h(c["wrappedMediumKey"])).hex(), c["mediumKey"])
    for section in ("kdf", "requestMac", "responseMac", "transit", "certificate", "mediumKey"):
        counts[section] = len(v[section])
        if counts[section] < 3:
            fails.append("%s: fewer than three cases" % section)
    total = sum(counts.values())
    summary = ", ".join("%s %d" % (s, n) for s, n in counts.items())
    if fails:
        sys.stderr.write("%s: self-test FAILED: %d value(s) differ from the %d vectors:\n" % (PROG, len(fails), total) + "".join("  %s\n" % f for f in fails))
        return EXIT_INTERNAL
    sys.stdout.write("%s: self-test passed: %d vectors (%s)\n" % (PROG, total, summary))
    return EXIT_OK


# ---------------------------------------------------------------- command line

def main(argv=None):
    p = argparse.ArgumentParser(prog="mocopy_station.py", description="A mocopy station client written from docs/protocol.md.")
    p.add_argument("--self-test", metavar="VECTORS.json", help="check this client against the published test vectors and exit")
    p.add_argument("--center", metavar="URL", help="the license center's base URL, e.g. http://127.0.0.1:7443")
    p.add_argument("--key-file", metavar="FILE", help="the station key file (format mocopy-station-key, mode 0600)")
    p.add_argument("--content", metavar="ID", help="the content ID (SIDi / DID)")
    p.add_argument("--medium-id", metavar="HEX", help="the medium ID read from the target drive (IDk / Mid), hex")
    p.add_argument("--scheme", choices=["a", "b"], help="the license scheme")
    p.add_argument("--request-id", metavar="UUID", help="the request ID (default: a new random UUID); the same ID again returns the same license")
    p.add_argument("--cafile", metavar="PEM", help="CA certificates to trust for an https:// center")
    p.add_argument("--timeout", type=float, default=15.0, help="seconds per attempt (default 15)")
    p.add_argument("--attempts", type=int, default=4, help="attempts on network errors and 5xx (default 4)")
    args = p.parse_args(argv)
    try:
        if args.self_test:
            try:
                return self_test(args.self_test)
            except (OSError, ValueError, KeyError, TypeError, InvalidUnwrap) as e:
                sys.stderr.write("%s: self-test FAILED: %s: %s\n" % (PROG, type(e).__name__, e))
                return EXIT_INTERNAL
        missing = [n for n in ("center", "key_file", "content", "medium_id", "scheme") if getattr(args, n) is None]
        if missing:
            p.error("missing " + ", ".join("--" + n.replace("_", "-") for n in missing))
        return request_license(args)
    except Failure as f:
        sys.stderr.write("%s: %s: %s\n" % (PROG, f.code, f.message))
        return f.exit_code


if __name__ == "__main__":
    sys.exit(main())
