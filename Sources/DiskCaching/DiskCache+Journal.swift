import Glibc
import Registry

extension DiskCache {
    /// A journal an append would take past this is written anew with what
    /// it still says (`compact`), or started over when that is too much.
    static let maxJournalBytes = 16 << 20
    /// Replaced records a journal may hold before it is written anew
    /// (besides half of it): every process reads them all.
    static let minReplacedBytes = 256 << 10
    /// The largest journal file read: a larger one is not the cache's own.
    static let maxJournalFileBytes = maxJournalBytes + JournalRecord.maxHeaderBytes + JournalRecord.maxPayloadBytes + 1
    /// Journals whose index a process keeps in memory at once; past it one
    /// is dropped, and read again from disk if asked for again.
    static let maxJournalsInMemory = 256
    /// Journal files kept open at once, for reading or appending (a
    /// journal keeps at most one of each): past it, a hit or an append
    /// opens and closes the file as it reads or writes.
    static let maxOpenJournalFiles = 64

    func journalPath(_ repository: String) -> String {
        tables + "/journals/\(Digest.of(Array(repository.utf8)).hex)"
    }

    /// What `find` finds in `repository`'s journal, looking in the file for
    /// what this process has not read yet when it finds nothing in memory;
    /// also the file that holds it.
    func lookUp<T>(_ journal: Journal, _ find: (JournalIndex) -> T?) -> (T, JournalIndex.FileIdentity)? {
        if let found = journal.index.withLock({ index in index.file.flatMap { file in find(index).map { ($0, file) } } }
        ) {
            return found
        }
        // Mostly the file holds nothing new, which one lstat (made outside
        // the lock, which other requests are waiting for) says.
        var current = stat()
        let missing = lstat(journal.path, &current) != 0 && errno == ENOENT
        return journal.index.withLock { index in
            if missing {
                // Gone (trimmed, or deleted as damaged): so is what it held.
                index = JournalIndex()
                return nil
            }
            let unchanged =
                (current.st_mode & S_IFMT) == S_IFREG && JournalIndex.FileIdentity(current) == index.file
                && Int(current.st_size) == index.consumed
            if !unchanged { refresh(&index, journal.path) }
            guard let file = index.file, let found = find(index) else { return nil }
            return (found, file)
        }
    }

    /// Reads what was appended to the journal since `index` last read it,
    /// from the start when the file is another one; a damaged journal is
    /// deleted.
    func refresh(_ index: inout JournalIndex, _ path: String) {
        let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK)
        guard fd >= 0 else {
            if errno == ELOOP {
                index = JournalIndex()
                return notOurs(path) ?? ()
            }
            if errno != ENOENT { failed("read \(path)", errno) }
            index = JournalIndex()
            return
        }
        defer { close(fd) }
        var status = stat()
        guard fstat(fd, &status) == 0 else { return failed("read \(path)", errno) }
        guard (status.st_mode & S_IFMT) == S_IFREG, Int(status.st_size) <= Self.maxJournalFileBytes else {
            index = JournalIndex()
            return notOurs(path) ?? ()
        }
        let identity = JournalIndex.FileIdentity(status)
        let size = Int(status.st_size)
        if identity != index.file || size < index.consumed { index = JournalIndex(file: identity) }
        guard size > index.consumed else { return }
        guard let bytes = readAt(fd, offset: index.consumed, count: size - index.consumed, path: path) else { return }
        let scan = JournalRecord.scan(bytes[...], offset: index.consumed)
        index.apply(scan)
        if scan.damaged { discardDamaged(&index, path) }
    }

    /// Deletes a journal found damaged (counted), and forgets its index.
    func discardDamaged(_ index: inout JournalIndex, _ path: String) {
        index = JournalIndex()
        _ = notOurs(path) as Void?
    }

    /// Appends `appending` to `journal` in one write.
    @discardableResult
    func append(_ appending: JournalRecord.Appending, to journal: Journal) -> Bool {
        append(to: journal) { _ in appending }
    }

    /// Appends the records `build` makes to `journal` in one write (the
    /// journal written anew, or started over, when it would pass
    /// `maxJournalBytes`), and takes them into this process's index when
    /// nothing else was appended since it last read. `build` is given the
    /// index as the file is at the write (what another process appended
    /// read first), so what the journal holds already is left out; nothing
    /// is written when it makes none. Returns whether anything was written.
    @discardableResult
    func append(to journal: Journal, _ build: (JournalIndex) -> JournalRecord.Appending) -> Bool {
        let appended = journal.appender.withLock { kept in
            guard var file = appendingFile(journal, &kept) else { return false }
            var size = Int(lseek(file.fd, 0, SEEK_END))
            let (appending, replaced, moved) = journal.index.withLock { index in
                if index.file != file.identity || size != index.consumed { refresh(&index, journal.path) }
                // A journal mostly of replaced answers costs every process
                // reading it: written anew once they pass half of it (and a floor).
                let replaced =
                    index.replacedBytes > max(Self.minReplacedBytes, index.consumed / 2)
                    && index.consumed - index.replacedBytes <= Self.maxJournalBytes / 2
                return (build(index), replaced, index.file != file.identity)
            }
            if appending.isEmpty { return false }
            // The path holds another file than the one open (replaced,
            // deleted as damaged): the records go to the path's.
            if moved {
                kept = nil
                guard let reopened = appendingFile(journal, &kept) else { return false }
                file = reopened
                size = Int(lseek(file.fd, 0, SEEK_END))
            }
            let full = size + appending.bytes.count > Self.maxJournalBytes
            if (replaced || full) && compact(journal, adding: appending) {
                kept = nil
                return true
            }
            if full {
                kept = nil
                unlink(journal.path)
                guard let reopened = appendingFile(journal, &kept) else { return false }
                file = reopened
            }
            let records = appending.bytes
            guard let end = write(records, to: file.fd, path: journal.path) else {
                kept = nil
                return false
            }
            count { $0.writes += 1 }
            // Where it landed: taken in only when it follows what was read.
            let start = end - records.count
            journal.index.withLock { index in
                if file.identity != index.file && start == 0 { index = JournalIndex(file: file.identity) }
                if file.identity == index.file && start == index.consumed {
                    index.apply(appending.records.map { $0.shifted(by: start) }, consumed: records.count)
                }
            }
            return true
        }
        if appended { trimSoonIfDue() }
        return appended
    }

    /// `journal`'s file open for appending: the one kept, while it is the
    /// file this process last read at the path and was opened less than
    /// `journalRecheckInterval` ago (a journal another process replaced or
    /// trimmed is appended to for at most that long), else the path opened
    /// again (and kept, unless enough files are kept open).
    private func appendingFile(_ journal: Journal, _ kept: inout (file: OpenJournalFile, checkedAt: UInt64)?)
        -> OpenJournalFile?
    {
        let now = Self.monotonicNow()
        if let current = kept, now &- current.checkedAt < journalRecheckInterval,
            journal.index.withLock({ $0.file == current.file.identity })
        {
            return current.file
        }
        kept = nil
        guard let (fd, status) = openForAppending(journal.path) else { return nil }
        let identity = JournalIndex.FileIdentity(status)
        guard
            let file = OpenJournalFile(
                fd: fd, identity: identity, openCount: openJournalFiles, limit: Self.maxOpenJournalFiles)
        else { return OpenJournalFile(oneUse: fd, identity: identity) }
        kept = (file, now)
        return file
    }

    /// Writes `records` at the end of `fd` (open for appending); returns
    /// the file's end after them, or nil when the disk refused (a record
    /// cut short hides every later one: the journal is then started over).
    private func write(_ records: [UInt8], to fd: Int32, path: String) -> Int? {
        var written = 0
        while written < records.count {
            let n = records.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + written, $0.count - written) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else {
                failed("write \(path)", errno)
                if written > 0 { unlink(path) }
                return nil
            }
            written += n
        }
        return Int(lseek(fd, 0, SEEK_CUR))
    }

    private func openForAppending(_ path: String) -> (Int32, stat)? {
        let fd = Glibc.open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0o600)
        guard fd >= 0 else {
            // A link, a FIFO (no reader: ENXIO) or a directory: not ours.
            if errno == ELOOP || errno == ENXIO || errno == EISDIR { return notOurs(path) }
            failed("open \(path)", errno)
            return nil
        }
        var status = stat()
        guard fstat(fd, &status) == 0 else {
            failed("open \(path)", errno)
            close(fd)
            return nil
        }
        guard (status.st_mode & S_IFMT) == S_IFREG else {
            close(fd)
            return notOurs(path)
        }
        return (fd, status)
    }

    /// The bytes at `range` of `journal`'s file, if it is still `file`;
    /// the file's time refreshed when not done within the hour.
    func readBody(_ range: Range<Int>, of journal: Journal, file: JournalIndex.FileIdentity) -> [UInt8]? {
        let bytes: [UInt8]?
        if let kept = keptReader(journal, file) {
            bytes = readAt(kept.fd, offset: range.lowerBound, count: range.count, path: journal.path)
        } else {
            guard let fd = openForReading(journal, file) else { return nil }
            bytes = readAt(fd, offset: range.lowerBound, count: range.count, path: journal.path)
            keep(fd, file, for: journal)
        }
        touchIfDue(journal)
        return bytes
    }

    /// `journal`'s file opened for reading, when it is still `file` (the
    /// one indexed); the caller closes it.
    func openForReading(_ journal: Journal, _ file: JournalIndex.FileIdentity) -> Int32? {
        let fd = Glibc.open(journal.path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK)
        guard fd >= 0 else { return nil }
        var status = stat()
        guard fstat(fd, &status) == 0, JournalIndex.FileIdentity(status) == file else {
            close(fd)
            return nil
        }
        return fd
    }

    /// The open file kept for `journal`, when it is `file` and was found
    /// at the journal's path less than `journalRecheckInterval` ago: past
    /// that the path is opened again, so a journal replaced or trimmed by
    /// any process stops being read within the interval.
    private func keptReader(_ journal: Journal, _ file: JournalIndex.FileIdentity) -> OpenJournalFile? {
        let now = Self.monotonicNow()
        return journal.reader.withLock { reader in
            guard let kept = reader, kept.file.identity == file, now &- kept.checkedAt < journalRecheckInterval
            else {
                reader = nil
                return nil
            }
            return kept.file
        }
    }

    /// Keeps `fd` (the file `file`, just opened and read) open for
    /// `journal`'s next reads, or closes it when enough files are kept open.
    private func keep(_ fd: Int32, _ file: JournalIndex.FileIdentity, for journal: Journal) {
        guard
            let opened = OpenJournalFile(
                fd: fd, identity: file, openCount: openJournalFiles, limit: Self.maxOpenJournalFiles)
        else {
            close(fd)
            return
        }
        let now = Self.monotonicNow()
        journal.reader.withLock { $0 = (opened, now) }
    }

    /// Marks the journal as used now, at most once an hour per process
    /// (the trim removes the least recently used first).
    func touchIfDue(_ journal: Journal) {
        let now = Self.now()
        let due = journal.index.withLock { index in
            guard index.touchedAt < now - DiskCacheTrimmer.touchInterval else { return false }
            index.touchedAt = now
            return true
        }
        if due { utimensat(AT_FDCWD, journal.path, nil, AT_SYMLINK_NOFOLLOW) }
    }

    /// Exactly `count` bytes at `offset`; nil when the file is shorter or unreadable.
    func readAt(_ fd: Int32, offset: Int, count: Int, path: String) -> [UInt8]? {
        var complete = true
        // Not zeroed first: every byte is read into place, or none is returned.
        let bytes = [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            var filled = 0
            while filled < count {
                let n = pread(fd, buffer.baseAddress! + filled, count - filled, off_t(offset + filled))
                if n < 0 && errno == EINTR { continue }
                if n < 0 { failed("read \(path)", errno) }
                guard n > 0 else {
                    complete = false
                    break
                }
                filled += n
            }
            initialized = filled
        }
        return complete ? bytes : nil
    }
}
