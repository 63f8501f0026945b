import NATWire
import Testing
@testable import STUN

@Suite struct STUNMessageTests {
    /// RFC 8489 §5 Figure 3: the class bits sit between the method bits.
    @Test func rfc8489_5_messageTypeBits() {
        #expect(STUNMessageType.bindingRequest.rawValue == 0x0001)
        #expect(STUNMessageType.bindingIndication.rawValue == 0x0011)
        #expect(STUNMessageType.bindingSuccess.rawValue == 0x0101)
        #expect(STUNMessageType.bindingError.rawValue == 0x0111)
        for raw in [UInt16(0x0001), 0x0011, 0x0101, 0x0111, 0x3EEF, 0x0003] {
            #expect(STUNMessageType(rawValue: raw).rawValue == raw)
        }
        #expect(STUNMessageType(rawValue: 0x3EEF).method == 0xFFF)
    }

    /// RFC 5769 §2.2 (RFC 8489 §14.2, §14.7, §14.14): every field of a real IPv4 Binding response.
    @Test func rfc8489_14_2_takesRealIPv4ResponseApart() throws {
        let m = try STUNMessage(decoding: Fixtures.rfc5769IPv4Response)
        #expect(m.type == .bindingSuccess)
        #expect(m.transactionID == Fixtures.rfc5769ID)
        #expect(m.attributes == [
            .software("test vector"),
            .xorMappedAddress(STUNEndpoint(IPv4Address(192, 0, 2, 1), 32853)),
            .other(type: STUNAttributeType.messageIntegrity, value: Fixtures.rfc5769IPv4MI),
            .fingerprint(0xc07d_4c96),
        ])
        let r = try STUNBindingResponse(m, answering: Fixtures.rfc5769ID, family: 0x01)
        #expect(r.mapped.description == "192.0.2.1:32853" && r.software == "test vector")
    }

    /// RFC 5780 §7: a real coturn answer (captured in the lab) taken apart, and built into junk byte for byte.
    @Test func rfc5780_7_takesRealCoturnResponseApart() throws {
        let m = try STUNMessage(decoding: Fixtures.coturnResponse)
        let mapped = STUNEndpoint(IPv4Address(198, 51, 100, 1), 40123)
        let attributes: [STUNAttribute] = [
            .xorMappedAddress(mapped), .mappedAddress(mapped),
            .responseOrigin(STUNEndpoint(IPv4Address(203, 0, 113, 2), 3478)),
            .otherAddress(STUNEndpoint(IPv4Address(203, 0, 113, 3), 3479)),
            .software("Coturn-4.6.1 'Gorst'"),
        ]
        #expect(m == STUNMessage(type: .bindingSuccess, transactionID: Fixtures.coturnID, attributes: attributes))
        let r = try STUNBindingResponse(m, answering: Fixtures.coturnID, family: 0x01)
        #expect(r.mapped == mapped && r.otherAddress?.port == 3479 && r.responseOrigin?.port == 3478)
        #expect(buildIntoJunk(m) == Fixtures.coturnResponse)
    }

    /// RFC 5769 §2.2 built into junk byte for byte (spaces as attribute padding, as the vector has).
    @Test func rfc8489_14_2_buildsRealIPv4ResponseIntoJunk() {
        let m = STUNMessage(type: .bindingSuccess, transactionID: Fixtures.rfc5769ID, attributes: [
            .software("test vector"),
            .xorMappedAddress(STUNEndpoint(IPv4Address(192, 0, 2, 1), 32853)),
            .other(type: STUNAttributeType.messageIntegrity, value: Fixtures.rfc5769IPv4MI),
        ])
        #expect(buildIntoJunk(m, fingerprint: true, padding: 0x20) == Fixtures.rfc5769IPv4Response)
    }

    /// RFC 8489 §15.2 / RFC 5769 §2.3: XOR-MAPPED-ADDRESS for IPv6 XORs with the cookie and the transaction id.
    @Test func rfc8489_15_2_xorMappedAddressIPv6() throws {
        let m = try STUNMessage(decoding: Fixtures.rfc5769IPv6Response)
        let expected = STUNEndpoint(IPv6Address("2001:db8:1234:5678:11:2233:4455:6677")!, 32853)
        #expect(m.first { $0.xorMappedAddress } == expected)
        #expect(m.first { $0.xorMappedAddress }?.description == "[2001:db8:1234:5678:11:2233:4455:6677]:32853")
        let built = STUNMessage(type: .bindingSuccess, transactionID: Fixtures.rfc5769ID, attributes: [
            .software("test vector"), .xorMappedAddress(expected),
            .other(type: STUNAttributeType.messageIntegrity, value: Fixtures.rfc5769IPv6MI),
        ])
        #expect(buildIntoJunk(built, fingerprint: true, padding: 0x20) == Fixtures.rfc5769IPv6Response)
    }

    /// RFC 8489 §14.2: XOR-MAPPED-ADDRESS for IPv4, bytes computed by hand (port ^ 0x2112, address ^ 0x2112a442).
    @Test func rfc8489_14_2_xorMappedAddressIPv4Bytes() throws {
        let id = STUNTransactionID(1, 2, 3)
        let m = STUNMessage(type: .bindingSuccess, transactionID: id, attributes: [.xorMappedAddress(STUNEndpoint(IPv4Address(198, 51, 100, 1), 1549))])
        // 1549 = 0x060d ^ 0x2112 = 0x271f; 198.51.100.1 = c6 33 64 01 ^ 21 12 a4 42 = e7 21 c0 43.
        let bytes = hex("01 01 00 0c 21 12 a4 42 00 00 00 01 00 00 00 02 00 00 00 03  00 20 00 08 00 01 27 1f e7 21 c0 43")
        #expect(buildIntoJunk(m) == bytes)
        #expect(try STUNMessage(decoding: bytes) == m)
    }

    /// RFC 8489 §14.1: MAPPED-ADDRESS, plain, for IPv4 and IPv6; a family other than 1 or 2 is refused.
    @Test func rfc8489_14_1_mappedAddress() throws {
        let id = STUNTransactionID(7, 8, 9)
        let v4 = hex("01 01 00 0c 21 12 a4 42 00 00 00 07 00 00 00 08 00 00 00 09  00 01 00 08 00 01 06 0d c6 33 64 01")
        let m4 = try STUNMessage(decoding: v4)
        #expect(m4.attributes == [.mappedAddress(STUNEndpoint(IPv4Address(198, 51, 100, 1), 1549))])
        #expect(buildIntoJunk(m4) == v4)
        let m6 = STUNMessage(type: .bindingSuccess, transactionID: id, attributes: [.mappedAddress(STUNEndpoint(IPv6Address("2001:db8::1")!, 443))])
        let b6 = m6.encode()
        #expect(Array(b6[20...]) == hex("00 01 00 14 00 02 01 bb 20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 01"))
        #expect(try STUNMessage(decoding: b6) == m6)
        var bad = v4
        bad[25] = 3
        #expect(throws: STUNError.badAddressFamily(type: 0x0001, family: 3)) { try STUNMessage(decoding: bad) }
        var badLen = v4
        badLen[23] = 20  // IPv4 family with an IPv6 length
        #expect(throws: STUNError.self) { try STUNMessage(decoding: badLen) }
    }

    /// RFC 8489 §14.8: ERROR-CODE class and number; §14.13: UNKNOWN-ATTRIBUTES padded to 4 bytes.
    @Test func rfc8489_14_8_errorCodeAndUnknownAttributes() throws {
        let m = STUNMessage.bindingError(id: STUNTransactionID(1, 1, 1), code: 420, reason: "Unknown Attribute", unknown: [0x7777, 0x0042, 0x0043])
        let b = try #require(buildIntoJunk(m))
        // ERROR-CODE: 00 00 04 14 "Unknown Attribute" (17 bytes, 3 of padding); UNKNOWN-ATTRIBUTES: 6 bytes + 2.
        #expect(Array(b[20..<28]) == hex("00 09 00 15 00 00 04 14"))
        #expect(Array(b[48..<60]) == hex("00 0a 00 06 77 77 00 42 00 43 00 00"))
        #expect(b.count == 60)
        let d = try STUNMessage(decoding: b)
        #expect(d == m)
        #expect(throws: STUNError.errorResponse(code: 420, reason: "Unknown Attribute")) {
            try STUNBindingResponse(d, answering: STUNTransactionID(1, 1, 1))
        }
        var badClass = b
        badClass[26] = 7
        #expect(throws: STUNError.badErrorCode(classValue: 7, number: 20)) { try STUNMessage(decoding: badClass) }
        var badNumber = b
        badNumber[27] = 100
        #expect(throws: STUNError.badErrorCode(classValue: 4, number: 100)) { try STUNMessage(decoding: badNumber) }
    }

    /// RFC 8489 §14.14: SOFTWARE is UTF-8; invalid UTF-8 is refused.
    @Test func rfc8489_14_14_software() throws {
        let m = STUNMessage(type: .bindingRequest, transactionID: STUNTransactionID(0, 0, 1), attributes: [.software("swiftnat ✓")])
        let b = m.encode()
        #expect(try STUNMessage(decoding: b) == m)
        var bad = b
        bad[24] = 0xFF
        #expect(throws: STUNError.invalidUTF8(type: 0x8022)) { try STUNMessage(decoding: bad) }
    }

    /// RFC 8489 §14.7: CRC-32 as zlib computes it, XORed with 0x5354554e; mismatches and a FINGERPRINT
    /// that is not last are refused.
    @Test func rfc8489_14_7_fingerprint() throws {
        #expect(CRC32.checksum(Array("123456789".utf8)) == 0xCBF4_3926)
        var flipped = Fixtures.rfc5769IPv4Response
        flipped[30] ^= 0x01
        #expect(throws: STUNError.fingerprintMismatch(expected: CRC32.stunFingerprint(flipped[0..<72]), found: 0xc07d_4c96)) {
            try STUNMessage(decoding: flipped)
        }
        // FINGERPRINT followed by another attribute.
        let m = STUNMessage.bindingRequest(id: STUNTransactionID(5, 5, 5))
        var b = m.encode(fingerprint: true)
        b += hex("80 22 00 00")
        setLength(&b, b.count - 20)
        #expect(throws: STUNError.self) { try STUNMessage(decoding: b) }
        // A message with FINGERPRINT last re-encodes with a fresh value.
        let withFP = try STUNMessage(decoding: m.encode(fingerprint: true))
        #expect(withFP.encode() == m.encode(fingerprint: true))
    }

    /// RFC 5780 §7.2: CHANGE-REQUEST flags 0x4 (IP) and 0x2 (port); §7.5 RESPONSE-PORT; §7.6 PADDING.
    @Test func rfc5780_7_2_changeRequestResponsePortPadding() throws {
        let id = STUNTransactionID(0x0102_0304, 0x0506_0708, 0x090a_0b0c)
        let m = STUNMessage.bindingRequest(id: id, changeIP: true, changePort: true, responsePort: 40000, padding: 5)
        let b = try #require(buildIntoJunk(m))
        #expect(b == hex("""
        00 01 00 1c 21 12 a4 42 01 02 03 04 05 06 07 08 09 0a 0b 0c
        00 03 00 04 00 00 00 06
        00 27 00 04 9c 40 00 00
        00 26 00 05 00 00 00 00 00 00 00 00
        """))
        let d = try STUNMessage(decoding: b)
        #expect(d.first { $0.changeRequest }! == (true, true))
        #expect(d.first { $0.responsePort } == 40000)
        #expect(d.attributes.contains(.padding(5)))
        let portOnly = try STUNMessage(decoding: STUNMessage.bindingRequest(id: id, changePort: true).encode())
        #expect(portOnly.first { $0.changeRequest }! == (false, true))
        #expect(Array(STUNMessage.bindingRequest(id: id, changeIP: true).encode()[20...]) == hex("00 03 00 04 00 00 00 04"))
    }

    /// RFC 5780 §7.3 RESPONSE-ORIGIN and §7.4 OTHER-ADDRESS, as coturn sends them.
    @Test func rfc5780_7_3_responseOriginAndOtherAddress() throws {
        let id = STUNTransactionID(9, 9, 9)
        let m = STUNMessage.bindingSuccess(id: id, mapped: STUNEndpoint(IPv4Address(198, 51, 100, 1), 1549),
                                           responseOrigin: STUNEndpoint(IPv4Address(203, 0, 113, 2), 3478),
                                           otherAddress: STUNEndpoint(IPv4Address(203, 0, 113, 3), 3479), software: "test")
        let b = try #require(buildIntoJunk(m, fingerprint: true))
        #expect(Array(b[32..<44]) == hex("80 2b 00 08 00 01 0d 96 cb 00 71 02"))
        #expect(Array(b[44..<56]) == hex("80 2c 00 08 00 01 0d 97 cb 00 71 03"))
        let r = try STUNBindingResponse(bytes: b, answering: id)
        #expect(r.responseOrigin?.description == "203.0.113.2:3478")
        #expect(r.otherAddress?.description == "203.0.113.3:3479")
        #expect(r.mapped.description == "198.51.100.1:1549")
    }

    /// RFC 3489 §11.2.3-4: a classic server's SOURCE-ADDRESS and CHANGED-ADDRESS stand in for the RFC 5780 ones;
    /// its MAPPED-ADDRESS stands in for XOR-MAPPED-ADDRESS.
    @Test func rfc3489_11_2_classicServerAttributes() throws {
        let id = STUNTransactionID(4, 4, 4)
        let m = STUNMessage(type: .bindingSuccess, transactionID: id, attributes: [
            .mappedAddress(STUNEndpoint(IPv4Address(198, 51, 100, 1), 5000)),
            .sourceAddress(STUNEndpoint(IPv4Address(203, 0, 113, 2), 3478)),
            .changedAddress(STUNEndpoint(IPv4Address(203, 0, 113, 3), 3479)),
        ])
        let b = m.encode()
        #expect(Array(b[32..<36]) == hex("00 04 00 08") && Array(b[44..<48]) == hex("00 05 00 08"))
        let r = try STUNBindingResponse(bytes: b, answering: id)
        #expect(r.mapped == STUNEndpoint(IPv4Address(198, 51, 100, 1), 5000))
        #expect(r.responseOrigin == STUNEndpoint(IPv4Address(203, 0, 113, 2), 3478))
        #expect(r.otherAddress == STUNEndpoint(IPv4Address(203, 0, 113, 3), 3479))
    }

    /// RFC 8489 §6.3.3: answers are matched to the transaction; unknown comprehension-required attributes,
    /// missing or unusable mapped addresses refuse the answer with a reason.
    @Test func rfc8489_6_3_3_responseChecks() throws {
        let id = STUNTransactionID(1, 2, 3)
        let good = STUNMessage.bindingSuccess(id: id, mapped: STUNEndpoint(IPv4Address(198, 51, 100, 1), 1000))
        #expect(throws: STUNError.transactionMismatch(STUNTransactionID(1, 2, 3))) {
            try STUNBindingResponse(good, answering: STUNTransactionID(1, 2, 4))
        }
        var unknown = good
        unknown.attributes.append(.other(type: 0x7777, value: [1, 2, 3, 4]))
        #expect(throws: STUNError.unknownComprehensionRequired([0x7777])) { try STUNBindingResponse(unknown, answering: id) }
        var optional = good
        optional.attributes.append(.other(type: 0xC001, value: [1]))
        #expect(try STUNBindingResponse(optional, answering: id).mapped.port == 1000)
        #expect(throws: STUNError.noMappedAddress) {
            try STUNBindingResponse(STUNMessage(type: .bindingSuccess, transactionID: id), answering: id)
        }
        let zero = STUNMessage.bindingSuccess(id: id, mapped: STUNEndpoint(IPv4Address(0), 1000))
        #expect(throws: STUNError.unusableMappedAddress(STUNEndpoint(IPv4Address(0), 1000))) { try STUNBindingResponse(zero, answering: id) }
        let portZero = STUNMessage.bindingSuccess(id: id, mapped: STUNEndpoint(IPv4Address(198, 51, 100, 1), 0))
        #expect(throws: STUNError.self) { try STUNBindingResponse(portZero, answering: id) }
        let v6 = STUNMessage.bindingSuccess(id: id, mapped: STUNEndpoint(IPv6Address("2001:db8::1")!, 1000))
        #expect(throws: STUNError.self) { try STUNBindingResponse(v6, answering: id, family: 0x01) }
        let request = STUNMessage.bindingRequest(id: id)
        #expect(throws: STUNError.unexpectedMessage(.bindingRequest)) { try STUNBindingResponse(request, answering: id) }
    }

    /// RFC 8489 §5: header checks — top bits, magic cookie, length multiple of 4, length vs. bytes.
    @Test func rfc8489_5_headerChecks() {
        let ok = STUNMessage.bindingRequest(id: STUNTransactionID(1, 1, 1)).encode()
        var top = ok; top[0] |= 0x80
        #expect(throws: STUNError.notSTUN) { try STUNMessage(decoding: top) }
        var cookie = ok; cookie[4] = 0
        #expect(throws: STUNError.badMagicCookie(0x0012_a442)) { try STUNMessage(decoding: cookie) }
        var odd = ok; odd[3] = 2
        #expect(throws: STUNError.lengthNotMultipleOfFour(2)) { try STUNMessage(decoding: odd) }
        var long = ok; long[3] = 8
        #expect(throws: STUNError.truncated(have: 20, need: 28)) { try STUNMessage(decoding: long) }
        #expect(throws: STUNError.trailingBytes(4)) { try STUNMessage(decoding: ok + [0, 0, 0, 0]) }
        #expect(throws: STUNError.truncated(have: 19, need: 20)) { try STUNMessage(decoding: Array(ok[0..<19])) }
    }
}
