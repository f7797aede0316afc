import Reasons
import Archive
import JSON
import YAML

/// A file's contents as the builtins read them: YAML or JSON, or nil when
/// it is neither (such files are left out). A document over the YAML
/// converter's limits is an error, never left out: a policy would read its
/// absence as "no such file".
enum FileContent {
    static func parse(_ bytes: [UInt8]) throws(YAMLError) -> JSONValue? {
        do {
            return try YAMLToJSON.convert(bytes)
        } catch  where error.isLimit {
            throw error
        } catch {
            return nil
        }
    }
}
