# Copyright: ntsops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""NTS-KE records (RFC 8915 section 4): byte vectors, strict parsing, property tests."""

from __future__ import annotations

import struct

import pytest
from ansible_collections.ntsops.nts.plugins.module_utils._errors import NtsopsError, NtsProtocolError
from ansible_collections.ntsops.nts.plugins.module_utils._nts import records as rec
from hypothesis import given, settings
from hypothesis import strategies as st

PROPERTY_SETTINGS = settings(max_examples=300, deadline=None)


def raw(record_type: int, body: bytes, critical: bool = False) -> bytes:
    """Test-side record encoder, written independently of encode_record."""
    return (
        bytes([(record_type >> 8) | (0x80 if critical else 0), record_type & 0xFF])
        + len(body).to_bytes(2, "big")
        + body
    )


EOM = bytes.fromhex("80000000")
NEXT_NTPV4 = bytes.fromhex("800100020000")
AEAD_15 = bytes.fromhex("80040002000f")


def chrony_like_response(cookies: int = 8, extra: bytes = b"") -> bytes:
    body = NEXT_NTPV4 + AEAD_15 + extra
    for index in range(cookies):
        body += raw(rec.NEW_COOKIE, bytes([index]) * 100)
    return body + EOM


def parse(data: bytes) -> list[rec.Record]:
    return rec.parse_records(data)


# --- encoding -------------------------------------------------------------------


def test_encode_record_sets_critical_bit_type_and_length() -> None:
    assert rec.encode_record(rec.NEW_COOKIE, b"abc", critical=False) == b"\x00\x05\x00\x03abc"
    assert rec.encode_record(rec.NEXT_PROTOCOL, b"\x00\x00", critical=True) == b"\x80\x01\x00\x02\x00\x00"
    assert rec.encode_record(0x7FFF, b"", critical=True) == b"\xff\xff\x00\x00"


@pytest.mark.parametrize(
    ("record_type", "body"),
    [(-1, b""), (0x8000, b""), (True, b""), ("1", b""), (1, b"x" * 65536), (1, "text")],
)
def test_encode_record_rejects_what_the_wire_cannot_carry(record_type: object, body: object) -> None:
    with pytest.raises(rec.NtsArgumentError):
        rec.encode_record(record_type, body, critical=False)  # type: ignore[arg-type]


def test_default_request_is_next_protocol_ntpv4_aead_15_end_of_message_all_critical() -> None:
    assert rec.build_ke_request() == bytes.fromhex("8001 0002 0000  8004 0002 000f  8000 0000")


def test_request_lists_aeads_in_preference_order_and_asks_for_the_compliant_gcm_context() -> None:
    # offering 30 adds chrony's empty, non-critical record 1024 (nts_ke.h NKE_RECORD_COMPLIANT_128GCM_EXPORT)
    request = rec.build_ke_request(aead_ids=(30, 15), next_protocols=(0,))
    assert request == bytes.fromhex("8001 0002 0000  8004 0004 001e 000f  0400 0000  8000 0000")
    assert rec.build_ke_request(aead_ids=(15, 16)) == bytes.fromhex("8001 0002 0000  8004 0004 000f 0010  8000 0000")


def test_gcm_keys_are_exported_as_30_only_when_the_server_echoes_the_compliant_record() -> None:
    aead_30 = bytes.fromhex("80040002001e")
    cookies = b"".join(raw(rec.NEW_COOKIE, bytes([i]) * 64) for i in range(8))
    echoed = rec.interpret_ke_response(
        parse(NEXT_NTPV4 + aead_30 + raw(rec.COMPLIANT_128GCM_EXPORT, b"") + cookies + EOM), offered_aeads=[30, 15])
    silent = rec.interpret_ke_response(parse(NEXT_NTPV4 + aead_30 + cookies + EOM), offered_aeads=[30, 15])
    assert echoed.compliant_128gcm and rec.exporter_aead(echoed) == 30
    assert not silent.compliant_128gcm and rec.exporter_aead(silent) == 15
    cmac = rec.interpret_ke_response(parse(chrony_like_response()), offered_aeads=[15])
    assert rec.exporter_aead(cmac) == 15
    with pytest.raises(rec.NtsProtocolError, match="1-byte body"):
        rec.interpret_ke_response(parse(NEXT_NTPV4 + aead_30 + raw(rec.COMPLIANT_128GCM_EXPORT, b"x") + cookies + EOM),
                                  offered_aeads=[30])


@pytest.mark.parametrize(
    "kwargs",
    [
        {"aead_ids": ()},
        {"next_protocols": []},
        {"aead_ids": (65536,)},
        {"aead_ids": (-1,)},
        {"aead_ids": (15, 15)},
        {"aead_ids": (True,)},
        {"aead_ids": "15"},
        {"aead_ids": 15},
    ],
)
def test_request_validation_raises_one_documented_type(kwargs: dict[str, object]) -> None:
    with pytest.raises(rec.NtsArgumentError) as info:
        rec.build_ke_request(**kwargs)  # type: ignore[arg-type]
    assert isinstance(info.value, NtsopsError)
    assert isinstance(info.value, ValueError)


def test_exporter_context_is_protocol_aead_direction() -> None:
    assert rec.exporter_context(rec.PROTOCOL_NTPV4, rec.AEAD_AES_SIV_CMAC_256, server_to_client=False) == (
        b"\x00\x00\x00\x0f\x00"
    )
    assert rec.exporter_context(0, 15, server_to_client=True) == b"\x00\x00\x00\x0f\x01"
    assert rec.exporter_context(0x1234, 30, server_to_client=True) == b"\x12\x34\x00\x1e\x01"
    with pytest.raises(rec.NtsArgumentError):
        rec.exporter_context(0, 70000, server_to_client=True)


def test_constants_match_rfc_8915_and_iana() -> None:
    assert rec.EXPORTER_LABEL == b"EXPORTER-network-time-security"
    assert [rec.END_OF_MESSAGE, rec.NEXT_PROTOCOL, rec.ERROR, rec.WARNING] == [0, 1, 2, 3]
    assert [rec.AEAD_ALGORITHM, rec.NEW_COOKIE, rec.SERVER_NEGOTIATION, rec.PORT_NEGOTIATION] == [4, 5, 6, 7]
    assert rec.AEAD_KEY_LENGTHS == {15: 32, 16: 48, 17: 64, 30: 16, 31: 32}
    assert set(rec.AEAD_NAMES) == set(rec.AEAD_KEY_LENGTHS)
    # RFC 8915's eight, and chrony's Compliant 128GCM Export (not in the IANA registry)
    assert set(rec.RECORD_NAMES) == {*range(8), rec.COMPLIANT_128GCM_EXPORT} and rec.COMPLIANT_128GCM_EXPORT == 1024
    assert rec.error_name(1) == "Bad Request"
    assert rec.error_name(0) == "Unrecognized Critical Record"
    assert rec.error_name(2) == "Internal Server Error"
    assert rec.error_name(77) == "unassigned"
    assert rec.warning_name(5) == "unassigned"


# --- incremental parsing -------------------------------------------------------


def test_parser_gives_same_records_whole_or_byte_by_byte() -> None:
    data = chrony_like_response()
    whole = parse(data)
    parser = rec.RecordParser()
    pieces: list[rec.Record] = []
    for index in range(len(data)):
        assert not parser.complete
        pieces.extend(parser.feed(data[index : index + 1]))
    parser.finish()
    assert parser.complete
    assert pieces == whole == parser.records
    assert [r.record_type for r in whole] == [1, 4] + [5] * 8 + [0]
    assert whole[0] == rec.Record(record_type=1, critical=True, body=b"\x00\x00")
    assert whole[2].body == b"\x00" * 100


def test_feed_returns_only_records_completed_by_that_chunk() -> None:
    parser = rec.RecordParser()
    assert parser.feed(NEXT_NTPV4[:3]) == []
    assert parser.feed(NEXT_NTPV4[3:] + AEAD_15[:1]) == [rec.Record(1, True, b"\x00\x00")]
    assert parser.feed(b"") == []
    assert parser.feed(AEAD_15[1:] + EOM) == [rec.Record(4, True, b"\x00\x0f"), rec.Record(0, True, b"")]
    assert parser.complete


def test_data_after_end_of_message_in_the_same_chunk() -> None:
    with pytest.raises(NtsProtocolError, match="2 bytes of data after the End of Message"):
        rec.RecordParser().feed(NEXT_NTPV4 + EOM + b"xx")


def test_data_after_end_of_message_in_a_later_chunk() -> None:
    parser = rec.RecordParser()
    parser.feed(NEXT_NTPV4 + EOM)
    with pytest.raises(NtsProtocolError, match="after the End of Message"):
        parser.feed(b"\x00")


def test_end_of_message_with_a_body() -> None:
    with pytest.raises(NtsProtocolError, match="End of Message record has a 2-byte body"):
        rec.RecordParser().feed(raw(0, b"ab", critical=True))


def test_declared_length_larger_than_data_is_incomplete_until_finish() -> None:
    parser = rec.RecordParser()
    assert parser.feed(NEXT_NTPV4 + raw(5, b"c" * 10)[:9]) == [rec.Record(1, True, b"\x00\x00")]
    assert not parser.complete
    with pytest.raises(NtsProtocolError, match=r"^truncated record: type 5 declares 10 bytes, only 5 received$"):
        parser.finish()


def test_stream_ending_before_end_of_message() -> None:
    parser = rec.RecordParser()
    parser.feed(NEXT_NTPV4)
    with pytest.raises(NtsProtocolError, match=r"ended before the End of Message record \(1 complete"):
        parser.finish()


def test_stream_ending_inside_a_record_header() -> None:
    parser = rec.RecordParser()
    parser.feed(b"\x80")
    with pytest.raises(NtsProtocolError, match=r"inside a record header \(1 of 4 bytes\)"):
        parser.finish()


def test_empty_stream() -> None:
    with pytest.raises(NtsProtocolError, match="ended before the End of Message"):
        rec.RecordParser().finish()


def test_records_that_never_end_are_cut_off_by_the_size_cap() -> None:
    parser = rec.RecordParser()
    chunk = raw(0x4321, b"z" * 1020) * 4  # valid, non-critical unknown records, no End of Message
    fed = 0
    with pytest.raises(NtsProtocolError, match=r"exceeds 65536 bytes.*never end"):
        for _attempt in range(100):  # bounded: 100 x 4 KiB is far above the cap
            parser.feed(chunk)
            fed += len(chunk)
    assert fed <= rec.MAX_RESPONSE_BYTES


def test_a_single_huge_declared_record_is_also_capped() -> None:
    parser = rec.RecordParser(max_bytes=1000)
    parser.feed(raw(5, b"")[:2] + b"\xff\xff")
    with pytest.raises(NtsProtocolError, match="exceeds 1000 bytes"):
        parser.feed(b"c" * 1000)


# --- interpretation --------------------------------------------------------------


def test_interpret_a_full_chrony_like_response() -> None:
    extra = raw(rec.SERVER_NEGOTIATION, b"ntp.example.net") + raw(rec.PORT_NEGOTIATION, b"\x04\xd2")
    extra += raw(0x1234, b"ignored") + raw(rec.WARNING, b"\x00\x07")
    response = rec.interpret_ke_response(parse(chrony_like_response(extra=extra)), offered_aeads=[15])
    assert response == rec.KeResponse(
        next_protocols=[0],
        aead=15,
        cookies=[bytes([i]) * 100 for i in range(8)],
        server="ntp.example.net",
        port=1234,
        warnings=[7],
        errors=[],
        unknown_records=[0x1234],
        deviations=[],
    )


def test_error_record_is_returned_not_raised() -> None:
    data = raw(rec.ERROR, b"\x00\x01", critical=True) + EOM
    response = rec.interpret_ke_response(parse(data), offered_aeads=[15])
    assert response.errors == [1]
    assert f"{rec.error_name(response.errors[0])} ({response.errors[0]})" == "Bad Request (1)"
    assert response.next_protocols == []
    assert response.aead is None


def test_empty_next_protocol_means_no_common_protocol() -> None:
    # chrony 4.3's answer to next protocols [1] (captured): empty Next Protocol, no Error record.
    with pytest.raises(rec.NtsNegotiationError, match=r"none of the offered next protocols: 1 \(unknown\)$"):
        rec.interpret_ke_response(parse(raw(1, b"", critical=True) + EOM), offered_aeads=[15], offered_protocols=[1])


def test_empty_aead_record_means_no_common_aead() -> None:
    # chrony 4.3's answer to AEAD offers [30] and [16, 17, 31] (captured).
    data = bytes.fromhex("8001 0002 0000  8004 0000  8000 0000")
    with pytest.raises(rec.NtsNegotiationError) as info:
        rec.interpret_ke_response(parse(data), offered_aeads=[16, 31])
    assert str(info.value) == (
        "server supports none of the offered AEAD algorithms: 16 (AEAD_AES_SIV_CMAC_384), 31 (AEAD_AES_256_GCM_SIV)"
    )
    assert isinstance(info.value, NtsProtocolError)


def test_ntpsec_answering_an_aead_that_was_not_offered_is_named() -> None:
    # NTPsec 1.2.2's answer to AEAD offer [30] (captured): a non-critical AEAD 15 record.
    data = bytes.fromhex("8001 0002 0000  0004 0002 000f") + raw(5, b"c" * 104) + EOM
    with pytest.raises(
        NtsProtocolError, match=r"server chose AEAD 15 \(AEAD_AES_SIV_CMAC_256\), which was not offered"
    ):
        rec.interpret_ke_response(parse(data), offered_aeads=[30])


def test_error_record_with_empty_negotiation_records_is_returned() -> None:
    data = raw(1, b"", True) + raw(4, b"", True) + raw(2, b"\x00\x02", True) + EOM
    response = rec.interpret_ke_response(parse(data), offered_aeads=[15])
    assert (response.errors, response.next_protocols, response.aead) == ([2], [], None)


def test_missing_critical_bits_are_deviations_not_errors() -> None:
    data = raw(1, b"\x00\x00") + AEAD_15 + raw(0, b"")
    response = rec.interpret_ke_response(parse(data), offered_aeads=[15])
    assert response.deviations == [
        "Next Protocol record lacks the critical bit",
        "End of Message record lacks the critical bit",
    ]


@pytest.mark.parametrize(
    ("records", "message"),
    [
        (raw(1, b"\x00", True) + AEAD_15, r"Next Protocol Negotiation record body must be a multiple of 2 bytes"),
        (NEXT_NTPV4 + raw(4, b"\x00\x0f\x00", True), r"AEAD Algorithm Negotiation record body must be exactly 2"),
        (NEXT_NTPV4 + raw(4, b"\x00\x1e", True), r"server chose AEAD 30 \(AEAD_AES_128_GCM_SIV\), which was not"),
        (raw(1, b"\x00\x05", True) + AEAD_15, r"server chose next protocol 5, which was not offered"),
        (NEXT_NTPV4 + AEAD_15 + raw(2, b"\x00\x01\x00", True), r"Error record body must be exactly 2 bytes, got 3"),
        (NEXT_NTPV4 + AEAD_15 + raw(3, b"", False), r"Warning record body must be exactly 2 bytes, got 0"),
        (NEXT_NTPV4 + AEAD_15 + raw(7, b"\x01\x02\x03"), r"Port Negotiation record body must be exactly 2"),
        (NEXT_NTPV4 + AEAD_15 + raw(7, b"\x00\x00"), r"names port 0"),
        (NEXT_NTPV4 + AEAD_15 + raw(6, b""), r"Server Negotiation record is empty"),
        (NEXT_NTPV4 + AEAD_15 + raw(6, "tíme.example".encode()), r"not a printable ASCII name"),
        (NEXT_NTPV4 + AEAD_15 + raw(6, b"two words"), r"not a printable ASCII name"),
        (NEXT_NTPV4 + AEAD_15 + raw(5, b""), r"New Cookie record is empty"),
        (NEXT_NTPV4 + AEAD_15 + raw(0x0401, b"x", critical=True), r"^unrecognized critical record type 1025$"),
        (NEXT_NTPV4 + NEXT_NTPV4 + AEAD_15, r"duplicate NTS Next Protocol Negotiation record"),
        (NEXT_NTPV4 + AEAD_15 + AEAD_15, r"duplicate AEAD Algorithm Negotiation record"),
        (NEXT_NTPV4 + AEAD_15 + raw(6, b"a") + raw(6, b"b"), r"duplicate NTPv4 Server Negotiation record"),
        (NEXT_NTPV4 + AEAD_15 + raw(7, b"\x00\x7b") + raw(7, b"\x00\x7b"), r"duplicate NTPv4 Port Negotiation"),
        (AEAD_15, r"has no Next Protocol record"),
        (NEXT_NTPV4 + raw(5, b"cookie"), r"agrees on NTPv4 but has no AEAD Algorithm record"),
    ],
)
def test_interpret_rejects_malformed_records_with_specific_messages(records: bytes, message: str) -> None:
    with pytest.raises(NtsProtocolError, match=message):
        rec.interpret_ke_response(parse(records + EOM), offered_aeads=[15])


def test_interpret_needs_end_of_message_last() -> None:
    records = [rec.Record(1, True, b"\x00\x00"), rec.Record(4, True, b"\x00\x0f")]
    with pytest.raises(NtsProtocolError, match="does not end with an End of Message"):
        rec.interpret_ke_response(records, offered_aeads=[15])
    with pytest.raises(NtsProtocolError, match="does not end with an End of Message"):
        rec.interpret_ke_response([], offered_aeads=[15])


def test_interpret_rejects_an_early_end_of_message_handed_in_directly() -> None:
    eom = rec.Record(0, True, b"")
    records = [rec.Record(1, True, b"\x00\x00"), eom, rec.Record(4, True, b"\x00\x0f"), eom]
    with pytest.raises(NtsProtocolError, match="duplicate End of Message record"):
        rec.interpret_ke_response(records, offered_aeads=[15])
    with pytest.raises(NtsProtocolError, match="End of Message record has a 1-byte body"):
        rec.interpret_ke_response([rec.Record(0, True, b"x")], offered_aeads=[15])


def test_unknown_critical_record_is_an_error_even_next_to_an_error_record() -> None:
    data = raw(2, b"\x00\x00", True) + raw(0x2222, b"", True) + EOM
    with pytest.raises(NtsProtocolError, match="unrecognized critical record type 8738"):
        rec.interpret_ke_response(parse(data), offered_aeads=[15])


# --- captured from real servers -------------------------------------------------------
# Responses of Debian's chrony 4.3 and NTPsec 1.2.2 (run in a private network namespace)
# to build_ke_request(), read up to End of Message. The cookies are opaque server data.

CHRONY_KE_RESPONSE = bytes.fromhex(
    "80010002000080040002000f000500645374b1df7fa67e893d49dd90f0fe9d462d34672a99f42552cefcbf64f44e65f4"
    "0df3de3f2552c24601bf8927fbb861de4dd9e9c5b38aaea8b64bd580584d87d4bb30998f83280af7ba50d34ddd38378d"
    "53c7a5c12e0174670fe98acb0d899ca05eb805b3000500645374b1dfb2adcf749dd153f77af53006a3119cbea81eb6b5"
    "333e982523ce5c58f9f2a1fdf2d107dab4a5eff245e37518c59a8640d42a124d2f44185f4bd24c5766330a5fe91d6932"
    "eaeae4b7b23cff0868c4330c413ba475c3c6d79a1b850a058a00b443000500645374b1df0cf67f54aac6d1754ccd4fcf"
    "50817167f17dd7b661f2a55b38e12e76bffd57a18e63062591b6c2736328c6b4227454aefd58a776380339eba8ab1523"
    "fb71694640d98bbb83cc489f350d7cf9aed1db7560a0fc5eca22f46c53afe58e2b36656c000500645374b1df8e3309f4"
    "038426ed7744ed8084a6834b49f3b1fcdc256a866fa8c17787fbba1a69d985d59a055d2d663787a8e956febd63e93805"
    "8a7fd418a154fe55939bb18c15e80ef84a2c153e5569b931ec4c7336990ad5f1bd25118f86472be8249aa62600050064"
    "5374b1dfd02fd624fc0109232c04a0c24aa7a8d134151f0d36c55aacaaa677d22ef3de2f8ce3f9aba55ba519dc075840"
    "da3e98b4bfed9b01d136eedc647be71ac105c2951b35ef10698f1b3aa645e10c6c552c5f41a66ec8968e7154feca25fd"
    "dd377595000500645374b1df9f2a70bb9f537132160d7aca353c5796ffee00492842ae9a8d8b1ebaf96fdba49e16d9d0"
    "c961dd79ba8527186b5bceb8ab129a1ff45f7df63940a8e37238246faf2192dd5e6b84a240c862699f4839d887c8ba97"
    "bfcd2ec7bdab25d2e015516f000500645374b1df3942b2fd7757951039951fc496619fb1ae26362dfa1a42bc0435922b"
    "edd3a59c5a8a7ab1e2408e8493cd23174fa1d6a7e737c632f362080dbe309e300a04a701dd229783a26f49695617432a"
    "7b34e60f3c580effc855443944331e38a0bcbfc1000500645374b1df158d99aba8d4df2d624dcab6798c6f00e0ec98a4"
    "6346ae4f4cf082a258b2cbb1fd07afa48dadbc57c8aa31d6f14bd863659add7eefab37364ca0890069ce0bf5e55c7e03"
    "a13f03a2362c4e0ad45252785cb3be598c70ca9560b15823138ea90d80000000"
)

NTPSEC_KE_RESPONSE = bytes.fromhex(
    "80010002000000040002000f0005006805f9fa6b988a54b327b91056b3811dd6682099017cb169820cb6fdc78e331395"
    "8cce35809674553af4ac71f82f2f3c078cafedd7be52bde5d656e3083834ea8ac4f5193357a07e12edd574aa688ddd01"
    "eda17c53e9ce74fcde881c626eece2d0c3a63a3aa0f84d5c0005006805f9fa6b165a250a6ad4a81ed50ea633b3430947"
    "ab98d66bff50eda301e1f9f4c071f8239b2c43fc4c65a67efa243e129450ed5ccb1dedb8d84a6d4e99b296971efec7b5"
    "226c5d92e782f50c993c9eb3b93539fb37d24f3f727974dc86cee3bdea5b23eaed73c7050005006805f9fa6b763078af"
    "a9a92e5908f2149457db7e979417d75b38d4bdf2470acf4db689966411e061e08398ef7d06cf8b3763d64f849329e28a"
    "b32dbcd4c90a53e4d587376ced1cc3f92a5b8abfa658f3665d4b45de1c86006f901341109d5349dd9d15e604f017fd0f"
    "0005006805f9fa6b9c7c7e8f2e2aa2e6a7795201cbb7eb2441059123eae504960d0af877b041ec3912e52852ad791abf"
    "f63b9929088f8cf2b0ba9b5aae24079c07f3b3783fcb188de93df36fb20d3fbc70a642e1bf1576a2e983ffd3b57d5abe"
    "51997df70e95279a43986def0005006805f9fa6b75ef96e5099b0d8e788ca0d5b3b6bd056ebee35233c37b06f7416f4a"
    "60ac0a884a58306106fdaca31c627a4e0500ed24328caa89edab0d142bd1470e4577a5cabb1e3a81396fdbe14148cd61"
    "b924934749c0b8210450d708f332d64a03c392e8a3677d870005006805f9fa6be54aeca03a2bff6c9528ceff87bc2b7a"
    "09b4875f31b5aced045af6f3a16140167437ec5e230283f316f1b6843a32289230d57e21269621104577aefd06d1d46c"
    "c8797f59a8f38f76989db0df67331a6602c3649a7eea54d231451b6873c9b184782843890005006805f9fa6be513caac"
    "20fb2f391fcc214a32dffa656e7f75a9f565507923ef11f138aa24993df1474a0d9fbf8ab97ceb6e33af19476b98d084"
    "79c1c0cd7fe7a210804335e74eee0beab409a3745ef1f6374940ab6b4e5f67ea97c59cca3c24c8f1dee530ee2431828b"
    "0005006805f9fa6be65f1d6223a513b9a3341e5a603c93a0bb294d14774f58da22c724fc80ffa9bb9f37438e72f38548"
    "3d3095d5517c94609e091b468facfa10c0e22f0d37d2f19b4ae9cd8b43c5ba879f0204cc99fe1b3d2a9f80d28a8610db"
    "965dd26b1574e66e388ebe4e80000000"
)


@pytest.mark.parametrize(
    ("data", "cookie_size", "aead_critical"),
    [(CHRONY_KE_RESPONSE, 100, True), (NTPSEC_KE_RESPONSE, 104, False)],
    ids=["chrony-4.3", "ntpsec-1.2.2"],
)
def test_real_server_responses(data: bytes, cookie_size: int, aead_critical: bool) -> None:
    records = parse(data)
    assert [(r.record_type, r.critical) for r in records[:2]] == [(1, True), (4, aead_critical)]
    response = rec.interpret_ke_response(records, offered_aeads=[15])
    assert (response.next_protocols, response.aead, response.server, response.port) == ([0], 15, None, None)
    assert [len(cookie) for cookie in response.cookies] == [cookie_size] * 8
    assert (response.errors, response.warnings, response.unknown_records, response.deviations) == ([], [], [], [])


# --- properties ------------------------------------------------------------------


@PROPERTY_SETTINGS
@given(chunks=st.lists(st.binary(max_size=80), max_size=12))
def test_parser_raises_only_ntsops_errors_on_arbitrary_chunks(chunks: list[bytes]) -> None:
    parser = rec.RecordParser(max_bytes=400)
    try:
        for chunk in chunks:
            parser.feed(chunk)
        parser.finish()
        rec.interpret_ke_response(parser.records, offered_aeads=[15, 30])
    except NtsopsError:
        pass


record_strategy = st.builds(
    lambda kind, critical, body: raw(kind, body, critical),
    st.one_of(st.integers(0, 8), st.integers(0, 0x7FFF)),
    st.booleans(),
    st.one_of(st.binary(max_size=4), st.binary(max_size=40)),
)


@PROPERTY_SETTINGS
@given(
    prefix=st.sampled_from([b"", NEXT_NTPV4 + AEAD_15]),
    records=st.lists(record_strategy, max_size=12),
    split=st.integers(0, 600),
)
def test_well_framed_random_records_raise_only_ntsops_errors(prefix: bytes, records: list[bytes], split: int) -> None:
    # The valid prefix lets many examples get past the mandatory-record checks.
    data = prefix + b"".join(records) + EOM
    parser = rec.RecordParser()
    try:
        parser.feed(data[:split])
        parser.feed(data[split:])
        parser.finish()
        response = rec.interpret_ke_response(parser.records, offered_aeads=[15])
    except NtsopsError:
        return
    assert response.aead in (None, 15)
    assert all(cookie for cookie in response.cookies)


@PROPERTY_SETTINGS
@given(
    aeads=st.lists(st.integers(0, 0xFFFF), min_size=1, max_size=6, unique=True),
    protocols=st.lists(st.integers(0, 0xFFFF), min_size=1, max_size=3, unique=True),
)
def test_request_parses_back_to_what_was_asked(aeads: list[int], protocols: list[int]) -> None:
    records = parse(rec.build_ke_request(aead_ids=aeads, next_protocols=protocols))
    compliant = [(rec.COMPLIANT_128GCM_EXPORT, False)] if rec.AEAD_AES_128_GCM_SIV in aeads else []
    assert [(r.record_type, r.critical) for r in records] == [(1, True), (4, True), *compliant, (0, True)]
    assert list(struct.unpack(f">{len(protocols)}H", records[0].body)) == protocols
    assert list(struct.unpack(f">{len(aeads)}H", records[1].body)) == aeads
