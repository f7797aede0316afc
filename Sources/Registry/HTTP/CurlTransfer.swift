import CCurl
import Dispatch
import FoundationEssentials
import Glibc
import Locking
import Memory

/// One request in flight on the `CurlEngine`: sets up its easy handle,
/// collects the response headers and body as libcurl delivers them, and
/// completes its caller's continuation exactly once. Apart from the fields
/// guarded by the engine's lock (`continuation`, `cancelRequested`), it is
/// used by the engine's thread only.
final class CurlTransfer: @unchecked Sendable {
    let request: HTTPRequest
    let sink: BodySink
    var continuation: UnsafeContinuation<Result<CurlResult, CurlFailure>, Never>?
    var cancelRequested = false

    private(set) var handle: UnsafeMutableRawPointer?
    private var headerList: UnsafeMutablePointer<curl_slist>?
    private var headers = ResponseHeaders()
    /// Header bytes received, all responses of the transfer together.
    private var headerBytes = 0
    private var headersOverLimit = false
    private var body: [UInt8] = []
    private var bodyLimit = 0
    /// What a body held in memory is taken from, if anything.
    private let memory: MemoryBudget?
    /// What `body` holds of `memory`, and how much it has taken.
    private var bodyCharge: MemoryShare?
    private var bodyTaken = 0
    /// The budget had no room for the next part of the body: this many bytes.
    private var refusedForMemory = 0
    /// What a body written to a file is taken from, if anything.
    private let downloads: DownloadBudget?
    /// What the file holds of `downloads`, and how much it has taken.
    private var fileCharge: MemoryShare?
    private var fileTaken = 0
    /// `downloads` had no room for the next part of the file.
    private var refusedForDownloads = false
    private var filePath: URL?
    /// `filePath` as text, made once: a `URL`'s `path` is decoded anew on
    /// every call, and a followed download tells it on every part written.
    private var filePathText = ""
    private var file: UnsafeMutablePointer<FILE>?
    private var hasher: DigestHasher?
    private var written = 0
    private var fileFailed = false
    /// What an earlier attempt kept, whose rest this transfer asks for.
    private var resuming: PartialDownload?
    /// Bytes of the file an earlier attempt wrote (`resuming`, taken up).
    private var resumedFrom = 0
    /// The answer to a resumed download was a range other than the one asked.
    private var rangeRefused: String?
    /// A `.file` body went past its limit.
    private var overLimit = false
    /// Seconds the whole transfer may take.
    private let timeLimit: Double
    /// When the transfer was handed its handle (`now()`), for telling its
    /// deadline from the registry's silence.
    private var configuredAt: UInt64 = 0
    /// Bytes of headers and body received, every response together.
    private var received = 0
    /// When the transfer last made progress (0 while it waits for a connection).
    private var lastProgress: UInt64 = 0
    /// Requests of the transfer sent so far: the first, then one per redirect.
    private var requestsSent = 0
    /// Whether the first request went to a public address (`AddressClass`).
    private var originIsPublic = false
    /// Whether the last request went to a public address.
    private var lastIsPublic = false
    /// Addresses counted as public whatever their range (the engine's
    /// `Settings.publicAddresses`).
    var publicAddresses: Set<String> = []
    /// The address of a local network a request was refused for (`maySend`).
    private var refusedAddress: String?
    /// A socket or file the transfer needed would have taken one of the
    /// descriptors kept in reserve, or there was none (`DescriptorReserve`).
    private var refusedForDescriptors = false

    init(
        request: HTTPRequest, sink: BodySink, timeLimit: Double, memory: MemoryBudget? = nil,
        downloads: DownloadBudget? = nil, resuming: PartialDownload? = nil
    ) {
        self.request = request
        self.sink = sink
        self.resuming = resuming
        self.timeLimit = timeLimit
        self.memory = memory
        self.downloads = downloads
    }

    /// The engine's clock (timers, deadlines, the idle check), in nanoseconds.
    static func now() -> UInt64 { monotonic(CLOCK_MONOTONIC) }

    /// The same clock a few milliseconds coarse and cheaper to read, for
    /// marking progress on every callback (the idle check counts in seconds).
    static func progressTime() -> UInt64 { monotonic(CLOCK_MONOTONIC_COARSE) }

    private static func monotonic(_ clock: clockid_t) -> UInt64 {
        var time = timespec()
        clock_gettime(clock, &time)
        return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
    }

    /// Sets up a new (or reset) handle with what every transfer shares:
    /// redirects, protocols, timeouts, CAs, proxies and the callbacks.
    /// Handles keep these between transfers; only a transfer that is not a
    /// plain GET leaves its handle to be reset (`needsReset`).
    static func configureShared(_ handle: UnsafeMutableRawPointer, settings: CurlEngine.Settings) {
        ocirpc_setopt_long(handle, CURLOPT_NOSIGNAL, 1)
        ocirpc_setopt_long(handle, CURLOPT_FOLLOWLOCATION, 1)
        ocirpc_setopt_long(handle, CURLOPT_MAXREDIRS, 10)
        // HTTP(S) only, redirects included: a registry cannot send us to ftp:// or file://.
        ocirpc_setopt_string(handle, CURLOPT_PROTOCOLS_STR, "http,https")
        ocirpc_setopt_long(handle, CURLOPT_CONNECTTIMEOUT_MS, max(1, Int(settings.timeout * 1000)))
        ocirpc_setopt_long(handle, CURLOPT_TCP_KEEPALIVE, 1)
        // A floor on the speed: a registry dripping a byte at a time cannot
        // hold a request forever.
        ocirpc_setopt_long(handle, CURLOPT_LOW_SPEED_LIMIT, CurlEngine.minimumBytesPerSecond)
        ocirpc_setopt_long(handle, CURLOPT_LOW_SPEED_TIME, max(1, Int(settings.timeout.rounded(.up))))
        if let caFile = settings.caFile { ocirpc_setopt_string(handle, CURLOPT_CAINFO, caFile) }
        if let caDirectory = settings.caDirectory { ocirpc_setopt_string(handle, CURLOPT_CAPATH, caDirectory) }
        // With no proxy in the environment, say so once: libcurl would
        // otherwise look the proxy variables up on every transfer.
        if !ProxyEnvironment.isSet {
            ocirpc_setopt_string(handle, CURLOPT_PROXY, "")
            ocirpc_setopt_string(handle, CURLOPT_NOPROXY, "")
        }
        ocirpc_setopt_data_callback(handle, CURLOPT_HEADERFUNCTION) { data, size, count, context in
            Unmanaged<CurlTransfer>.fromOpaque(context!).takeUnretainedValue().receiveHeader(data, size * count)
        }
        ocirpc_setopt_data_callback(handle, CURLOPT_WRITEFUNCTION) { data, size, count, context in
            Unmanaged<CurlTransfer>.fromOpaque(context!).takeUnretainedValue().receiveBody(data, size * count)
        }
        ocirpc_setopt_opensocket_callback(handle) { context, _, address in
            guard let address else { return CURL_SOCKET_BAD }
            let family = address.pointee.family
            let transfer = context.map { Unmanaged<CurlTransfer>.fromOpaque($0).takeUnretainedValue() }
            if let transfer {
                let socketAddress = UnsafeRawPointer(address) + MemoryLayout<curl_sockaddr>.offset(of: \.addr)!
                guard transfer.mayConnect(to: socketAddress, family: family) else { return CURL_SOCKET_BAD }
            }
            // Close-on-exec, as every descriptor the server opens is.
            let fd = DescriptorReserve.admitted(
                socket(family, address.pointee.socktype | Int32(SOCK_CLOEXEC.rawValue), address.pointee.protocol))
            if fd < 0, DescriptorReserve.isExhaustion(errno) { transfer?.refusedForDescriptors = true }
            return fd
        }
        ocirpc_setopt_prereq_callback(handle) { context, address, _, _, _ in
            let transfer = Unmanaged<CurlTransfer>.fromOpaque(context!).takeUnretainedValue()
            // A connection is ours: from now on, silence counts toward the timeout.
            transfer.lastProgress = CurlTransfer.progressTime()
            return transfer.maySend(on: address) ? Int32(CURL_PREREQFUNC_OK) : Int32(CURL_PREREQFUNC_ABORT)
        }
    }

    /// Whether the handle must be reset before another transfer: a method
    /// other than GET, or a request body, leaves options behind.
    var needsReset: Bool { request.method != "GET" || request.body != nil }

    /// Sets `handle` (set up by `configureShared`) up for this request;
    /// a failure, with the handle untouched, when its header list could
    /// not be built (a header that is not sendable, or out of memory:
    /// never sent without its headers).
    func configure(_ handle: UnsafeMutableRawPointer) -> CurlFailure? {
        // No "Accept: */*" unless asked, and no 100-continue round trip.
        let list: UnsafeMutablePointer<curl_slist>
        if let kept = KeptHeaderLists.shared.list(for: request.headers) {
            list = kept
        } else {
            switch KeptHeaderLists.make(request.headers) {
            case .success(let own):
                headerList = own
                list = own
            case .failure(let failure):
                return failure
            }
        }
        self.handle = handle
        configuredAt = Self.now()
        let context = Unmanaged.passUnretained(self).toOpaque()
        // Strings go to libcurl through `withCString`, which lends the
        // string's own bytes; passing a String where C wants a pointer
        // copies it into a new array first.
        request.url.withCString { _ = ocirpc_setopt_string(handle, CURLOPT_URL, $0) }
        let https = request.url.hasPrefix("https:")
        // Redirects never go from https down to http.
        (https ? "https" : "http,https").withCString {
            _ = ocirpc_setopt_string(handle, CURLOPT_REDIR_PROTOCOLS_STR, $0)
        }
        // Over TLS, a registry that speaks HTTP/2 takes every request on one
        // connection: wait for the first connection's answer to that rather
        // than open one per request (one TLS handshake, not eight).
        ocirpc_setopt_long(handle, CURLOPT_PIPEWAIT, https ? 1 : 0)
        // A deadline for the whole transfer.
        ocirpc_setopt_long(handle, CURLOPT_TIMEOUT_MS, max(1, Int(min(timeLimit, 86_400) * 1000)))
        switch request.method {
        case "GET": break
        case "HEAD": ocirpc_setopt_long(handle, CURLOPT_NOBODY, 1)
        case "POST": break
        default: ocirpc_setopt_string(handle, CURLOPT_CUSTOMREQUEST, request.method)
        }
        // A body is always given from memory: libcurl would otherwise read
        // one from stdin, which is the JSON-RPC stream.
        if let payload = request.body, !payload.isEmpty {
            ocirpc_setopt_offset(handle, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(payload.count))
            payload.withUnsafeBytes { bytes in
                // Copied by libcurl.
                _ = ocirpc_setopt_pointer(
                    handle, CURLOPT_COPYPOSTFIELDS, UnsafeMutableRawPointer(mutating: bytes.baseAddress))
            }
        } else if request.body != nil || request.method == "POST" {
            ocirpc_setopt_long(handle, CURLOPT_POST, 1)
            ocirpc_setopt_offset(handle, CURLOPT_POSTFIELDSIZE_LARGE, 0)
        }
        ocirpc_setopt_slist(handle, CURLOPT_HTTPHEADER, list)
        ocirpc_setopt_pointer(handle, CURLOPT_HEADERDATA, context)
        ocirpc_setopt_pointer(handle, CURLOPT_WRITEDATA, context)
        ocirpc_setopt_pointer(handle, CURLOPT_PREREQDATA, context)
        ocirpc_setopt_pointer(handle, CURLOPT_OPENSOCKETDATA, context)
        switch sink {
        case .memory(let limit):
            bodyLimit = limit
            ocirpc_setopt_offset(handle, CURLOPT_MAXFILESIZE_LARGE, 0)
        case .file(_, _, let limit, _):
            bodyLimit = 1 << 20
            // Refused up front when the response declares a larger body.
            ocirpc_setopt_offset(handle, CURLOPT_MAXFILESIZE_LARGE, curl_off_t(limit))
        }
        return nil
    }

    /// Whether the request about to go on a connection, new or kept, must
    /// go to a public address (`maySend`).
    private var mustBePublic: Bool {
        requestsSent == 0 ? request.onlyPublicAddresses : originIsPublic && !request.mayEnterLocalNetworks
    }

    /// Whether libcurl may open a connection to the socket address at
    /// `address` for the next request: refused, before anything reaches
    /// it, where `maySend` would refuse the request. A kept connection is
    /// not opened again, so `maySend` still decides.
    fileprivate func mayConnect(to address: UnsafeRawPointer, family: Int32) -> Bool {
        guard mustBePublic, !AddressClass.isPublic(socketAddress: address, family: family) else { return true }
        let text = AddressClass.text(socketAddress: address, family: family)
        guard !publicAddresses.contains(text) else { return true }
        refusedAddress = text
        return false
    }

    /// Whether the request about to go on a connection to `address` (as
    /// libcurl names it) may be sent. The first one of the transfer goes to
    /// the registry wherever it is, unless the request may go only to
    /// public addresses (`HTTPRequest.onlyPublicAddresses`). One that
    /// follows a redirect may go to an address of a local network
    /// (`AddressClass`) only when the first did too: a registry on the
    /// public internet cannot send the server's requests to services inside
    /// its network (cloud metadata, admin pages). libcurl has connected by
    /// then, but no request is sent.
    private func maySend(on address: UnsafeMutablePointer<CChar>?) -> Bool {
        defer { requestsSent += 1 }
        lastIsPublic =
            address.map {
                AddressClass.isPublic($0) || (!publicAddresses.isEmpty && publicAddresses.contains(String(cString: $0)))
            } ?? false
        if requestsSent == 0 { originIsPublic = lastIsPublic }
        guard mustBePublic && !lastIsPublic else {
            // Another of the host's addresses may have been refused first.
            refusedAddress = nil
            return true
        }
        refusedAddress = address.map { String(cString: $0) } ?? "an unknown address"
        return false
    }

    /// Whether the transfer has had a connection but no progress for `limit` ns.
    func isIdle(since now: UInt64, limit: UInt64) -> Bool {
        lastProgress != 0 && now > lastProgress && now - lastProgress > limit
    }

    private func receiveHeader(_ data: UnsafeMutablePointer<CChar>?, _ length: Int) -> Int {
        lastProgress = Self.progressTime()
        guard let data, length > 0 else { return length }
        received += length
        // A registry could send headers without end: they are bounded too.
        guard length <= CurlEngine.maxHeaderBytes - headerBytes else {
            headersOverLimit = true
            return 0
        }
        headerBytes += length
        let line = UnsafeRawBufferPointer(start: data, count: length)
        if length >= 5 && memcmp(data, "HTTP/", 5) == 0 {
            // A new response (after a redirect or a 100 Continue): start over.
            headers = ResponseHeaders()
            return length
        }
        guard let colon = line.firstIndex(of: UInt8(ascii: ":")) else { return length }
        let (nameStart, nameEnd) = Self.trimmed(line, 0, colon)
        guard let index = ResponseHeaders.index(of: UnsafeRawBufferPointer(rebasing: line[nameStart..<nameEnd])) else {
            return length
        }
        let (valueStart, valueEnd) = Self.trimmed(line, colon + 1, length)
        let value = String(decoding: UnsafeRawBufferPointer(rebasing: line[valueStart..<valueEnd]), as: UTF8.self)
        if index == ResponseHeaders.linkIndex, let earlier = headers[index] {
            headers[index] = earlier + ", " + value
        } else if let earlier = headers[index] {
            // A field given twice is read as Go reads it (`Header.Get`):
            // its first value. A registry sending two `Docker-Content-Digest`
            // had its last read here, and the first by the runtime that
            // pulls the image. Two lengths that differ fail Go's client: no
            // length is read.
            if index == 0 && earlier != value { headers[index] = "" }
            // Of several challenges, the first of a scheme the client
            // knows, as go-containerregistry picks one (`Negotiate`, then
            // `Bearer`: the bearer one).
            if index == 5 && !Self.isKnownChallenge(earlier) && Self.isKnownChallenge(value) { headers[index] = value }
        } else {
            headers[index] = value
        }
        return length
    }

    /// Whether a `WWW-Authenticate` value is a `Basic` or `Bearer` challenge.
    private static func isKnownChallenge(_ value: String) -> Bool {
        let scheme = value.utf8.prefix { $0 != UInt8(ascii: " ") }
        return ["basic", "bearer"].contains { known in
            scheme.count == known.utf8.count
                && zip(scheme, known.utf8).allSatisfy { $0 | 0x20 == $1 }
        }
    }

    /// The bounds of `bytes[start..<end]` without leading and trailing
    /// spaces, tabs, CR and LF.
    private static func trimmed(_ bytes: UnsafeRawBufferPointer, _ start: Int, _ end: Int) -> (Int, Int) {
        func isSpace(_ byte: UInt8) -> Bool { byte == 0x20 || byte == 0x09 || byte == 0x0D || byte == 0x0A }
        var start = start, end = end
        while start < end, isSpace(bytes[start]) { start += 1 }
        while end > start, isSpace(bytes[end - 1]) { end -= 1 }
        return (start, end)
    }

    private func receiveBody(_ data: UnsafeMutablePointer<CChar>?, _ length: Int) -> Int {
        lastProgress = Self.progressTime()
        guard let data, length > 0 else { return length }
        received += length
        if case .file(let directory, let algorithm, _, let progress) = sink, file == nil, !fileFailed,
            let status = statusCode(), (200..<300).contains(status)
        {
            if let partial = resuming, status == 206 {
                guard resume(partial) else { return 0 }
            } else {
                // Answered whole: the part kept is of no use, and its
                // share of the download budget goes before this one takes its own.
                resuming?.discard()
                startFile(in: directory, hashing: algorithm, progress: progress)
                guard file != nil else { return 0 }
            }
        }
        if let file {
            if case .file(_, _, let limit, _) = sink, length > limit - written {
                overLimit = true
                return 0
            }
            guard takeForDownload(length) else {
                refusedForDownloads = true
                return 0
            }
            guard fwrite(data, 1, length, file) == length else {
                fileFailed = true
                return 0
            }
            hasher?.update(UnsafeRawBufferPointer(start: data, count: length))
            written += length
            // A reader follows the file: what it is told is written must
            // be in the file, not in this process's buffer.
            if case .file(_, _, _, let progress?) = sink {
                guard fflush(file) == 0 else {
                    fileFailed = true
                    return 0
                }
                progress.wrote(written, to: filePathText)
            }
            return length
        }
        let room = bodyLimit + 1 - body.count
        if room > 0 {
            let kept = min(room, length)
            guard takeFromBudget(kept) else {
                refusedForMemory = kept
                return 0
            }
            body.append(contentsOf: UnsafeRawBufferPointer(start: data, count: kept).bindMemory(to: UInt8.self))
        }
        // Past the limit: stop (the caller sees limit + 1 bytes).
        return room > length ? length : 0
    }

    /// Creates the file a `.file` body is written to (`fileFailed` when it
    /// could not be).
    private func startFile(in directory: URL, hashing algorithm: Digest.Algorithm, progress: DownloadProgress?) {
        let path = directory.appendingPathComponent("blob-\(UUID().uuidString)")
        let text = path.path
        guard let opened = Self.createPrivateFile(text) else {
            if DescriptorReserve.isExhaustion(errno) { refusedForDescriptors = true }
            fileFailed = true
            return
        }
        file = opened
        filePath = path
        filePathText = text
        hasher = DigestHasher(algorithm)
        progress?.began(path: filePathText)
    }

    /// Takes up what an earlier attempt kept, when this `206` answers with
    /// the very range asked for: the body is appended to its file and
    /// hashed after its bytes. False, with `rangeRefused` set, otherwise.
    private func resume(_ partial: PartialDownload) -> Bool {
        let said = headers[ResponseHeaders.contentRangeIndex]
        guard PartialDownload.continues(said, from: partial.written) else {
            rangeRefused = said ?? "none"
            return false
        }
        guard let (reopened, charge) = partial.takeUp() else {
            if DescriptorReserve.isExhaustion(errno) { refusedForDescriptors = true }
            fileFailed = true
            return false
        }
        resuming = nil
        file = reopened
        filePath = partial.path
        filePathText = partial.pathText
        hasher = partial.hasher
        written = partial.written
        resumedFrom = partial.written
        fileCharge = charge
        fileTaken = partial.taken
        return true
    }

    /// Takes `count` more body bytes from the memory budget (true when
    /// there is none). A body is counted once it passes
    /// `MemoryBudget.uncountedValueBytes`, from its first byte.
    private func takeFromBudget(_ count: Int) -> Bool {
        guard let budget = memory else { return true }
        let total = body.count + count
        guard bodyCharge != nil || total > MemoryBudget.uncountedValueBytes else { return true }
        return Self.cover(
            total, with: &bodyCharge, taken: &bodyTaken, from: budget, declared: declaredLength(), limit: bodyLimit)
    }

    /// Takes `count` more file bytes from the download budget (true when
    /// there is none).
    private func takeForDownload(_ count: Int) -> Bool {
        guard let downloads, case .file(_, _, let limit, _) = sink else { return true }
        return Self.cover(
            written + count, with: &fileCharge, taken: &fileTaken, from: downloads.bytes, declared: declaredLength(),
            limit: limit)
    }

    /// The body length the response declares, if it does.
    private func declaredLength() -> Int? { headers[0].flatMap(ResponseHeaders.length) }

    /// Takes from `budget`, through `charge` (made on first use), what a
    /// body of `total` bytes needs beyond the `taken` it has: the first
    /// time, the length the response declares (at most `limit`) when that
    /// is more, so that a body admitted can finish, and bodies arriving
    /// together do not all fail part way once the budget is full. False,
    /// taking nothing, when the budget has no room.
    static func cover(
        _ total: Int, with charge: inout MemoryShare?, taken: inout Int, from budget: MemoryBudget,
        declared: @autoclosure () -> Int?, limit: Int
    ) -> Bool {
        guard total > taken else { return true }
        let share = charge ?? MemoryShare(of: budget)
        charge = share
        let target = taken == 0 ? max(total, min(declared() ?? 0, limit)) : total
        do {
            try share.take(target - taken)
            taken = target
            return true
        } catch {
            return false
        }
    }

    /// A new file only its owner can read (0600), not inherited by children.
    static func createPrivateFile(_ path: String) -> UnsafeMutablePointer<FILE>? {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return nil }
        guard DescriptorReserve.admits(fd) else {
            close(fd)
            unlink(path)
            errno = EMFILE
            return nil
        }
        guard let file = fdopen(fd, "w") else {
            close(fd)
            unlink(path)
            return nil
        }
        return file
    }

    private func statusCode() -> Int? {
        var status = 0
        guard let handle, ocirpc_getinfo_long(handle, CURLINFO_RESPONSE_CODE, &status) == CURLE_OK, status > 0 else {
            return nil
        }
        return status
    }

    /// The result of a transfer libcurl finished with `code`. What the body
    /// and the file took from their budgets goes with the result (its
    /// response and file), or is given back with a failure: the transfer,
    /// which the engine may hold a little longer, keeps none of it.
    func outcome(_ code: CURLcode) -> Result<CurlResult, CurlFailure> {
        defer {
            bodyCharge = nil
            fileCharge = nil
        }
        if let file {
            if fclose(file) != 0 { fileFailed = true }
            self.file = nil
        }
        if let refusedAddress {
            discardFile()
            return .failure(CurlFailure(.localAddressRefused, refusedAddress))
        }
        if refusedForDescriptors {
            discardFile()
            return .failure(CurlFailure(.descriptorLimit, DescriptorReserve.refusal))
        }
        if headersOverLimit {
            discardFile()
            return .failure(
                CurlFailure(.headersTooLarge, "the response headers are over \(CurlEngine.maxHeaderBytes) bytes"))
        }
        if refusedForDownloads, let downloads {
            discardFile()
            return .failure(CurlFailure(.downloadLimit, downloads.refusal))
        }
        if refusedForMemory > 0, let budget = memory {
            let refusal = MemoryLimitExceeded(limit: budget.limit, asked: refusedForMemory)
            return .failure(CurlFailure(.memoryLimit, refusal.message))
        }
        if let rangeRefused {
            let asked = resuming?.rangeHeader ?? ""
            return .failure(CurlFailure(.wrongRange, "answered \(asked) with Content-Range: \(rangeRefused)"))
        }
        let cutAtLimit = code == CURLE_WRITE_ERROR && !fileFailed && body.count > bodyLimit
        // libcurl refuses a body declared longer than a download's limit
        // whatever the status: an error's own body (a 404's or a 401's JSON,
        // longer than a small blob) is no blob, and its status says what
        // happened (a missing blob was `blob_too_large`, a challenge too).
        let errorBodyRefused =
            code == CURLE_FILESIZE_EXCEEDED && !overLimit && statusCode().map { !(200..<300).contains($0) } == true
        guard code == CURLE_OK || cutAtLimit || errorBodyRefused, let status = statusCode() else {
            if overLimit || code == CURLE_FILESIZE_EXCEEDED, case .file(_, _, let limit, _) = sink {
                discardFile()
                return .failure(CurlFailure(.tooLarge, "the body is larger than \(limit) bytes"))
            }
            if fileFailed {
                discardFile()
                return .failure(CurlFailure(.localFile, "could not write the downloaded body"))
            }
            if code == CURLE_OPERATION_TIMEDOUT, let deadline = stillAnsweringAtDeadline() {
                discardFile()
                return .failure(deadline)
            }
            let failure = Self.failure(code)
            return .failure(CurlFailure(failure.kind, failure.message, partial: keptPart(after: failure)))
        }
        var challengeURL: String?
        if status == 401, let handle {
            var effective: UnsafeMutablePointer<CChar>?
            if ocirpc_getinfo_string(handle, CURLINFO_EFFECTIVE_URL, &effective) == CURLE_OK, let effective {
                challengeURL = String(cString: effective)
            }
        }
        let response = HTTPResponse(
            status: status, headers: headers, body: body, challengeURL: challengeURL, bodyCharge: bodyCharge,
            fromPublicAddress: lastIsPublic)
        var downloaded: DownloadedFile?
        if let filePath, let hasher {
            downloaded = DownloadedFile(
                url: filePath, digest: hasher.finalize(), size: written, charge: fileCharge, resumedFrom: resumedFrom)
        } else if case .file(let directory, let algorithm, _, _) = sink, (200..<300).contains(status) {
            // An empty body: no write came, so no file yet.
            let path = directory.appendingPathComponent("blob-\(UUID().uuidString)")
            guard let created = Self.createPrivateFile(path.path) else {
                return .failure(CurlFailure(.localFile, "could not create the downloaded file"))
            }
            fclose(created)
            downloaded = DownloadedFile(url: path, digest: Digest.of([UInt8](), algorithm: algorithm), size: 0)
        }
        var connections = 0
        if let handle { ocirpc_getinfo_long(handle, CURLINFO_NUM_CONNECTS, &connections) }
        return .success(CurlResult(response: response, file: downloaded, connectionsOpened: connections))
    }

    /// A `deadline` failure when libcurl's timeout was the transfer's whole
    /// time running out while the registry was still answering, on average
    /// at more than the minimum rate: a large blob, not a silent or dripping
    /// registry (whose timeouts are `timeout`, the registry's failure).
    private func stillAnsweringAtDeadline() -> CurlFailure? {
        let elapsed = Double(Self.now() &- configuredAt) / 1e9
        guard configuredAt != 0, elapsed + 0.01 >= min(timeLimit, 86_400),
            Double(received) >= Double(CurlEngine.minimumBytesPerSecond) * elapsed
        else { return nil }
        return CurlFailure(.deadline, "\(received) bytes had come in \(Int(elapsed.rounded())) s")
    }

    /// What the file written so far becomes when the connection broke off
    /// or went silent part way (`failure`): a `PartialDownload`, which the
    /// next attempt may resume, no longer this transfer's to delete. Nil
    /// (the file deleted) for any other failure, or when nothing was written.
    private func keptPart(after failure: CurlFailure) -> PartialDownload? {
        guard failure.kind == .connection || failure.kind == .timeout, written > 0, let filePath, let hasher else {
            discardFile()
            return nil
        }
        let partial = PartialDownload(
            path: filePath, pathText: filePathText, written: written, hasher: hasher, charge: fileCharge,
            taken: fileTaken)
        self.filePath = nil
        self.hasher = nil
        fileCharge = nil
        fileTaken = 0
        return partial
    }

    /// Frees what the handle pointed at; the handle itself goes back to the engine.
    func release() {
        if let file {
            fclose(file)
            self.file = nil
            discardFile()
        }
        if let handle { ocirpc_setopt_slist(handle, CURLOPT_HTTPHEADER, nil) }
        ocirpc_slist_free_all(headerList)
        headerList = nil
        handle = nil
    }

    func complete(_ outcome: consuming Result<CurlResult, CurlFailure>) {
        if case .failure = outcome { discardFile() }
        // Taken before the resume: once it is told, the task goes on and
        // this thread writes nothing more of the transfer.
        let continuation = self.continuation
        self.continuation = nil
        SanitizerHandOff.release(self)
        // Moved, not copied: nothing of the result (what its body holds of
        // a budget included) stays with the engine's thread once resumed.
        continuation?.resume(returning: consume outcome)
    }

    private func discardFile() {
        if let filePath { try? FileManager.default.removeItem(at: filePath) }
        filePath = nil
        fileCharge = nil
        fileTaken = 0
    }

    /// Maps libcurl's error codes onto timeouts, TLS and connection failures,
    /// and libcurl's own (out of memory, misused) onto `library`.
    static func failure(_ code: CURLcode) -> CurlFailure {
        let text = String(cString: ocirpc_easy_strerror(code))
        switch code {
        case CURLE_OPERATION_TIMEDOUT:
            return CurlFailure(.timeout, text)
        case CURLE_SSL_CONNECT_ERROR, CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_CERTPROBLEM, CURLE_SSL_CIPHER,
            CURLE_SSL_CACERT_BADFILE, CURLE_SSL_ENGINE_NOTFOUND, CURLE_SSL_ENGINE_SETFAILED, CURLE_SSL_CRL_BADFILE,
            CURLE_SSL_ISSUER_ERROR, CURLE_SSL_PINNEDPUBKEYNOTMATCH, CURLE_SSL_INVALIDCERTSTATUS,
            CURLE_SSL_SHUTDOWN_FAILED, CURLE_USE_SSL_FAILED:
            return CurlFailure(.tls, text)
        case CURLE_OUT_OF_MEMORY, CURLE_FAILED_INIT, CURLE_BAD_FUNCTION_ARGUMENT, CURLE_UNKNOWN_OPTION,
            CURLE_NOT_BUILT_IN:
            // This side's failure, not the registry's.
            return CurlFailure(.library, text)
        default:
            return CurlFailure(.connection, text)
        }
    }
}
