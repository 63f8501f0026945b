#if canImport(Glibc)
import Glibc
#endif
import STUN

/// Why a STUN query got no usable answer.
public enum STUNClientError: Error, CustomStringConvertible, Sendable {
    /// No answer within the retransmission schedule; `lastRefusal` is the last answer that was refused.
    case timedOut(server: STUNEndpoint?, lastRefusal: STUNError?)
    /// The answer was refused (error response, unusable mapping, or a malformed message on a TCP stream).
    case refused(server: STUNEndpoint?, STUNError)
    case socket(SocketError)
    /// The server closed the TCP connection before answering.
    case closed(server: STUNEndpoint)
    /// ICMP port unreachable: nothing listens there.
    case unreachable(server: STUNEndpoint?)
    /// Stopped by a signal.
    case stopped

    public var description: String {
        switch self {
        case .timedOut(let s, let r):
            "no answer from \(s.map { "\($0)" } ?? "the STUN server")" + (r.map { " (refused: \($0))" } ?? "")
        case .refused(let s, let e): "answer from \(s.map { "\($0)" } ?? "the STUN server") refused: \(e.reason): \(e)"
        case .socket(let e): e.description
        case .closed(let s): "\(s) closed the connection without answering"
        case .unreachable(let s): "\(s.map { "\($0)" } ?? "the STUN server") is unreachable (ICMP port unreachable)"
        case .stopped: "stopped"
        }
    }
}

/// A Binding answer and where it came from.
public struct STUNAnswer: Sendable {
    public var response: STUNBindingResponse
    public var from: STUNEndpoint?
}

/// A process-wide stop flag (SIGTERM/SIGINT): every wait in this module returns within 200 ms of it.
public enum StopFlag {
    nonisolated(unsafe) static var raised: sig_atomic_t = 0
    public static var isRaised: Bool { raised != 0 }
    public static func raise() { raised = 1 }

    /// Raises the flag on SIGTERM and SIGINT.
    /// The signals are unblocked too: a parent may have started us with them blocked (a process
    /// started from a libdispatch worker thread inherits its mask).
    public static func installSignalHandlers() {
        signal(SIGTERM) { _ in StopFlag.raised = 1 }
        signal(SIGINT) { _ in StopFlag.raised = 1 }
        signal(SIGPIPE, SIG_IGN)
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGTERM)
        sigaddset(&set, SIGINT)
        pthread_sigmask(SIG_UNBLOCK, &set, nil)
    }
}

/// Sleeps up to `d`, waking early when the stop flag is raised. Returns false when stopped.
@discardableResult
public func interruptibleSleep(_ d: Duration) -> Bool {
    let end = monotonicNow() + d
    while !StopFlag.isRaised {
        let left = end - monotonicNow()
        if left <= .zero { return true }
        usleep(UInt32(milliseconds(min(left, .milliseconds(200)))) * 1000)
    }
    return false
}

/// One Binding transaction over UDP (RFC 8489 §6.2.1): sends `request` to `server` (nil when the socket
/// is connected), retransmits on the schedule of `timing`, and returns the first answer that checks out.
/// Malformed or hostile datagrams are discarded (RFC 8489 §6.3) and reported to `onRefusal`; an error
/// response ends the transaction.
public func stunTransaction(socket: Socket, to server: STUNEndpoint?, request: STUNMessage,
                            timing: STUNRetransmission = STUNRetransmission(),
                            onRefusal: (STUNError, STUNEndpoint?) -> Void = { _, _ in }) throws(STUNClientError) -> STUNAnswer {
    var schedule = timing
    let bytes = request.encode(fingerprint: true)
    let family: UInt8 = socket.family == AF_INET ? 0x01 : 0x02
    var lastRefusal: STUNError? = nil
    while true {
        if StopFlag.isRaised { throw .stopped }
        switch schedule.poll(now: monotonicNow()) {
        case .send:
            do {
                if let server { try socket.send(bytes, to: server) } else { try socket.send(bytes) }
            } catch {
                throw .socket(error)
            }
        case .timedOut:
            throw .timedOut(server: server ?? socket.remoteEndpoint, lastRefusal: lastRefusal)
        case .wait(let until):
            let left = min(until - monotonicNow(), .milliseconds(200))
            let ready: Bool
            do { ready = try socket.wait(timeout: left) } catch { throw .socket(error) }
            guard ready else { continue }
            let datagram: [UInt8], from: STUNEndpoint?
            do { (datagram, from) = try socket.receiveFrom() } catch {
                // ICMP port unreachable on a connected socket: the server is not there.
                if error.errno == ECONNREFUSED { throw .unreachable(server: server ?? socket.remoteEndpoint) }
                throw .socket(error)
            }
            do throws(STUNError) {
                let m = try STUNMessage(decoding: datagram)
                if m.transactionID != request.transactionID { throw STUNError.transactionMismatch(m.transactionID) }
                let r = try STUNBindingResponse(m, answering: request.transactionID, family: family)
                return STUNAnswer(response: r, from: from)
            } catch {
                onRefusal(error, from)
                lastRefusal = error
                if case .errorResponse = error { throw .refused(server: from, error) }
            }
        }
    }
}

/// One Binding transaction over TCP (RFC 8489 §7.2.2) from `local` (bound with SO_REUSEADDR and
/// SO_REUSEPORT, so it can share the port with a listener and a keep-alive connection). The connection
/// is closed with RST, so the port keeps no TIME_WAIT entry toward the server.
public func stunOverTCP(local: STUNEndpoint, server: STUNEndpoint, options: SocketOptions,
                        timeout: Duration = .seconds(5)) throws(STUNClientError) -> (STUNAnswer, local: STUNEndpoint) {
    var o = options
    o.reusePort = true
    let s: Socket
    do {
        s = try Socket(family: server.address.isIPv4 ? AF_INET : AF_INET6, tcp: true, options: o)
        try s.bind(local)
        try s.connect(server, timeout: timeout)
    } catch {
        throw .socket(error)
    }
    s.setAbortiveClose()
    defer { s.close() }
    let id = STUNTransactionID.random()
    do { try s.sendAll(STUNMessage.bindingRequest(id: id).encode(fingerprint: true)) } catch { throw .socket(error) }
    var framer = STUNStreamFramer()
    let end = monotonicNow() + timeout
    while true {
        if StopFlag.isRaised { throw .stopped }
        let left = end - monotonicNow()
        guard left > .zero else { throw .timedOut(server: server, lastRefusal: nil) }
        let ready: Bool
        do { ready = try s.wait(timeout: min(left, .milliseconds(200))) } catch { throw .socket(error) }
        guard ready else { continue }
        let chunk: [UInt8]?
        do { chunk = try s.receive() } catch { throw .socket(error) }
        guard let chunk else { throw .closed(server: server) }
        framer.append(chunk)
        do throws(STUNError) {
            while let m = try framer.next() {
                guard m.transactionID == id else { continue }
                let r = try STUNBindingResponse(m, answering: id, family: server.address.family)
                return (STUNAnswer(response: r, from: server), s.localEndpoint ?? local)
            }
        } catch {
            throw .refused(server: server, error)
        }
    }
}
