import Foundation
import NATLab
import NATRuntime
import Testing

// Issue 15, the FTP helper: vsftpd on the server (outside), curl on the client (inside), a file fetched
// in passive and in active mode through the daemon. vsftpd refuses a PORT/EPRT whose address is not the
// control connection's peer (port_promiscuous=NO) and a data connection from another address
// (pasv_promiscuous=NO), so a transfer that works proves the rewrite: the client's 100.64.0.2 (10
// characters in PORT) became 198.51.100.1 (12), a length change that the sequence adjustment must carry
// for the rest of the control connection.
@Suite(.serialized, .enabled(if: canRunLab, "end-to-end tests need root, /dev/net/tun and iproute2 (ip): run `sudo swift test` or .ci/run"))
struct FTPEndToEndTests {
    static let vsftpd = Shell.which("vsftpd") ?? "/usr/sbin/vsftpd"

    /// Writes vsftpd's configuration and a file to fetch (outside the lab directory, which only root may
    /// enter: vsftpd serves anonymous users as `ftp`); returns the configuration's path, the file's bytes
    /// and the directory to remove.
    func prepareServer(_ net: LabNetwork) throws -> (config: String, file: Data, root: String) {
        let root = "/tmp/swiftnat-ftp-\(getpid())-\(UUID().uuidString.prefix(8))"
        let pub = root + "/pub", empty = root + "/empty"
        for d in [root, pub, empty] {
            try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
        }
        var rng = SystemRandomNumberGenerator()
        let file = Data((0..<300_000).map { _ in UInt8.random(in: 0...255, using: &rng) })
        try file.write(to: URL(fileURLWithPath: pub + "/data.bin"))
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: pub + "/data.bin")
        let config = """
        listen=YES
        listen_ipv6=NO
        listen_address=\(LabNetwork.serverAddress)
        listen_port=21
        background=NO
        anonymous_enable=YES
        no_anon_password=YES
        local_enable=NO
        write_enable=NO
        anon_root=\(pub)
        pasv_enable=YES
        pasv_min_port=50000
        pasv_max_port=50100
        port_enable=YES
        connect_from_port_20=YES
        port_promiscuous=NO
        pasv_promiscuous=NO
        secure_chroot_dir=\(empty)
        seccomp_sandbox=NO
        xferlog_enable=NO
        syslog_enable=NO
        vsftpd_log_file=\(net.directory)/vsftpd-transfers.log
        idle_session_timeout=30
        data_connection_timeout=20

        """
        let path = net.directory + "/vsftpd.conf"
        try config.write(toFile: path, atomically: true, encoding: .utf8)
        return (path, file, root)
    }

    /// Fetches data.bin with curl and extra `options`; the bytes, or nil with curl's output recorded.
    func fetch(_ net: LabNetwork, _ options: [String], name: String) -> Data? {
        let out = net.directory + "/\(name).bin"
        let o = net.exec(net.client, ["curl", "-sS", "--max-time", "25", "--connect-timeout", "5"] + options
                         + ["-o", out, "ftp://\(LabNetwork.serverAddress)/data.bin"], timeout: 30)
        guard o.ok else {
            Issue.record("curl \(options) failed (\(o.status)): \(o.stdout) \(o.stderr)")
            return nil
        }
        return FileManager.default.contents(atPath: out)
    }

    /// RFC 959 §3.2 and RFC 5382 REQ-6 (a NAT with an FTP ALG): passive mode (curl's EPSV, then PASV),
    /// and active mode with EPRT (RFC 2428 §2) and with PORT, whose rewrite changes the command's length.
    @Test func rfc959_passiveAndActiveModeFetchThroughTheNAT() throws {
        guard requireTools(["curl", "socat"]) else { return }
        guard FileManager.default.isExecutableFile(atPath: Self.vsftpd) else {
            Issue.record("vsftpd missing: apt-get install vsftpd (see .ci/run)")
            return
        }
        try withLab("ftp") { net, _ in
            let (config, file, root) = try prepareServer(net)
            defer { try? FileManager.default.removeItem(atPath: root) }
            let server = try net.spawn(net.server, [Self.vsftpd, config], logName: "vsftpd.log")
            defer { net.stop(server) }
            #expect(net.waitForListener(net.server, port: 21, timeout: 10), "vsftpd did not listen: \(net.log("vsftpd.log"))")
            #expect(fetch(net, [], name: "passive-epsv") == file, "passive (EPSV)")
            #expect(fetch(net, ["--disable-epsv"], name: "passive-pasv") == file, "passive (PASV)")
            #expect(fetch(net, ["--ftp-port", "-"], name: "active-eprt") == file, "active (EPRT)")
            #expect(fetch(net, ["--ftp-port", "-", "--disable-eprt"], name: "active-port") == file, "active (PORT, length changed)")
            // Twice in a row over new control connections: expectations are consumed, not left behind.
            #expect(fetch(net, ["--ftp-port", "-", "--disable-eprt"], name: "active-port-2") == file, "active (PORT) again")
            // A PORT that nobody connects to: `swiftnat sessions` lists the expectation with its master, and
            // the control connection as helped.
            let ctl = try net.spawn(net.client, ["sh", "-c", "(printf 'USER anonymous\\r\\nPASS x\\r\\nPORT 100,64,0,2,117,48\\r\\n'; sleep 4) | timeout 8 socat -t 5 - TCP:\(LabNetwork.serverAddress):21"],
                                    logName: "ctl.log")
            defer { net.stop(ctl) }
            var listing = ""
            for _ in 0..<30 where !listing.contains("expected") {
                usleep(100_000)
                listing = Shell.run([swiftnatBinary, "sessions", "--socket", net.controlSocket], timeout: 10).stdout
            }
            #expect(listing.contains("expected") && listing.contains("inside=100.64.0.2:30000")
                    && listing.contains("master=100.64.0.2:") && listing.contains("-> 203.0.113.2:21"), "\(listing)\nctl: \(net.log("ctl.log"))")
            #expect(listing.contains("[helper ftp]"), "\(listing)")
        }
    }

    /// `[nat44.helpers] ftp = []` turns the helper off: active mode fails (vsftpd refuses the inside
    /// address in PORT), passive still works.
    @Test func rfc4787_req10_helperOffLeavesActiveModeBroken() throws {
        guard requireTools(["curl"]), FileManager.default.isExecutableFile(atPath: Self.vsftpd) else { return }
        try withLab("ftpoff", extraTables: "[nat44.helpers]\nftp = []\n") { net, _ in
            let (config, file, root) = try prepareServer(net)
            defer { try? FileManager.default.removeItem(atPath: root) }
            let server = try net.spawn(net.server, [Self.vsftpd, config], logName: "vsftpd.log")
            defer { net.stop(server) }
            #expect(net.waitForListener(net.server, port: 21, timeout: 10))
            #expect(fetch(net, [], name: "passive") == file)
            let o = net.exec(net.client, ["curl", "-sS", "--max-time", "15", "--connect-timeout", "5", "--ftp-port", "-", "--disable-eprt",
                                          "-o", net.directory + "/x.bin", "ftp://\(LabNetwork.serverAddress)/data.bin"], timeout: 20)
            #expect(!o.ok, "active mode worked without the helper")
        }
    }
}
