/// Manifest and index texts as registries, mistakes and attackers write
/// them: escapes in keys and values, keys given twice, values of the wrong
/// kind, text that is not ASCII. For tests that read one text two ways.
public enum ManifestSamples {
    public static let texts: [String] = [
        #"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000","size":32654,"urls":["https://example.com/l"],"annotations":{"org.opencontainers.image.title":"layer"}}],"annotations":{"i":"7"}}"#,
        #"{ "schemaVersion" : 2 , "config" : { "size" : 1.5e3 , "digest" : "sha256:c" } , "layers" : [ ] }"#,
        #"{"media\u0054ype":"application/vnd.oci.image.index.v1+json","manifests":[{"digest":"sha256:a","platform":{"os":"linux","architecture":"amd64"}}]}"#,
        #"{"mediaType":"a\"b\\c\/d\n","config":{"mediaType":"\u00e9t\u00E9","data":"aGVs\u006Cbw==","digest":"sha256:\ud83d\ude00"},"layers":[]}"#,
        #"{"config":{"digest":"first"},"config":{"digest":"second"},"layers":{"not":"an array"},"layers":[1,"x",null,{"size":"12"}]}"#,
        #"{"annotations":{"a":"1","b":"2","a":3,"c":{"x":"y"},"a":"4","\u0061":"5","é":"nfc","e\u0301":"nfd"}}"#,
        #"{"annotations":{"k0":"v","k1":"v","k2":"v","k3":"v","k4":"v","k5":"v","k6":"v","k7":"v","k8":"v","k9":"v","k10":"v","k11":"v","k12":"v","k13":"v","k14":"v","k15":"v","k16":"v","k3":"w","k\u0031":"z"}}"#,
        #"{"schemaVersion":"2","mediaType":7,"config":null,"layers":[{"platform":{"os":"linux","architecture":"arm","variant":"v7","os.features":["a",1],"features":"x"}}],"subject":{"digest":"sha256:s","size":-0}}"#,
        #"{"subject":"not an object","annotations":[],"layers":[{"annotations":{"\u0000":"\u001f","k":"\t"}}]}"#,
        #"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json","manifests":[{"mediaType":"m","digest":"sha256:b","size":7,"platform":{"architecture":"arm64","os":"linux","variant":"v8","os.version":"10"}},{"digest":"sha256:c"}],"annotations":{"ünïcode":"✓"}}"#,
        #"{"deep":[[[[{"a":[{"b":{}}]}]]]],"layers":[{},{"digest":""}],"config":{"urls":[],"annotations":{}}}"#,
        #"{"data":"","config":{"data":"not base64!","artifactType":"application/x"},"artifactType":true}"#,
        #"{}"#,
    ]
}
