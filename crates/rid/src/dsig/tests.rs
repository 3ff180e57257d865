//! Exclusive C14N against outputs worked out from the W3C recommendations (C14N 1.0 §3 examples
//! read without their DTDs, the exc-c14n §2.2 example) and the signature reader's refusals.

use super::*;

fn c14n_doc(xml: &str) -> String {
    let doc = tree::read(xml.as_bytes(), &Limits::default()).unwrap();
    String::from_utf8(c14n::canonicalize(&doc, &[], None)).unwrap()
}

/// The canonical form of the first element named `local` (document order).
fn c14n_sub(xml: &str, local: &str) -> String {
    let doc = tree::read(xml.as_bytes(), &Limits::default()).unwrap();
    let mut found = None;
    doc.root.walk(|p, e| {
        if found.is_none() && e.local == local {
            found = Some(p.to_vec());
        }
    });
    let path = found.unwrap();
    String::from_utf8(c14n::canonicalize(&doc, &path, None)).unwrap()
}

#[test]
fn c14n_pis_and_comments_outside_the_root() {
    // C14N 1.0 §3.1 (less its DOCTYPE, which the reader refuses)
    let xml = "<?xml version=\"1.0\"?>\n\n<?xml-stylesheet   href=\"doc.xsl\"\n   type=\"text/xsl\"   ?>\n\n<doc>Hello, world!<!-- Comment 1 --></doc>\n\n<?pi-without-data     ?>\n\n<!-- Comment 2 -->\n\n<!-- Comment 3 -->\n";
    assert_eq!(
        c14n_doc(xml),
        "<?xml-stylesheet href=\"doc.xsl\"\n   type=\"text/xsl\"   ?>\n<doc>Hello, world!</doc>\n<?pi-without-data?>"
    );
}

#[test]
fn c14n_whitespace_in_content_is_kept() {
    // C14N 1.0 §3.2
    let xml = "<doc>\n   <clean>   </clean>\n   <dirty>   A   B   </dirty>\n   <mixed>\n      A\n      <clean>   </clean>\n      B\n      <dirty>   A   B   </dirty>\n      C\n   </mixed>\n</doc>";
    assert_eq!(c14n_doc(xml), xml);
}

#[test]
fn c14n_start_and_end_tags() {
    // C14N 1.0 §3.3 without the DTD (so e9 has no defaulted attribute), exclusive: unused
    // declarations (xmlns:a on e6, e8, e9) disappear
    let xml = r#"<doc>
   <e1   />
   <e2   ></e2>
   <e3   name = "elem3"   id="elem3"   />
   <e4   name="elem4"   id="elem4"   ></e4>
   <e5 a:attr="out" b:attr="sorted" attr2="all" attr="I'm"
      xmlns:b="http://www.ietf.org"
      xmlns:a="http://www.w3.org"
      xmlns="http://example.org"/>
   <e6 xmlns="" xmlns:a="http://www.w3.org">
      <e7 xmlns="http://www.ietf.org">
         <e8 xmlns="" xmlns:a="http://www.w3.org">
            <e9 xmlns="" xmlns:a="http://www.ietf.org"/>
         </e8>
      </e7>
   </e6>
</doc>"#;
    let want = r#"<doc>
   <e1></e1>
   <e2></e2>
   <e3 id="elem3" name="elem3"></e3>
   <e4 id="elem4" name="elem4"></e4>
   <e5 xmlns="http://example.org" xmlns:a="http://www.w3.org" xmlns:b="http://www.ietf.org" attr="I'm" attr2="all" b:attr="sorted" a:attr="out"></e5>
   <e6>
      <e7 xmlns="http://www.ietf.org">
         <e8 xmlns="">
            <e9></e9>
         </e8>
      </e7>
   </e6>
</doc>"#;
    assert_eq!(c14n_doc(xml), want);
}

#[test]
fn c14n_character_modifications_and_references() {
    // C14N 1.0 §3.4 without the DTD: every attribute is CDATA
    let xml = "<doc>\n   <text>First line&#x0d;&#10;Second line</text>\n   <value>&#x32;</value>\n   <compute><![CDATA[value>\"0\" && value<\"10\" ?\"valid\":\"error\"]]></compute>\n   <compute expr='value>\"0\" &amp;&amp; value&lt;\"10\" ?\"valid\":\"error\"'>valid</compute>\n   <norm attr=' &apos;   &#x20;&#13;&#xa;&#9;   &apos; '/>\n   <normNames attr='   A   &#x20;&#13;&#xa;&#9;   B   '/>\n</doc>";
    let want = "<doc>\n   <text>First line&#xD;\nSecond line</text>\n   <value>2</value>\n   <compute>value&gt;\"0\" &amp;&amp; value&lt;\"10\" ?\"valid\":\"error\"</compute>\n   <compute expr=\"value>&quot;0&quot; &amp;&amp; value&lt;&quot;10&quot; ?&quot;valid&quot;:&quot;error&quot;\">valid</compute>\n   <norm attr=\" '    &#xD;&#xA;&#x9;   ' \"></norm>\n   <normNames attr=\"   A    &#xD;&#xA;&#x9;   B   \"></normNames>\n</doc>";
    assert_eq!(c14n_doc(xml), want);
}

#[test]
fn c14n_line_ends_are_normalised_and_utf8_kept() {
    // C14N 1.0 §3.6 (as UTF-8), and raw CR LF / CR in text and attributes
    assert_eq!(c14n_doc("<doc>&#169;</doc>"), "<doc>©</doc>");
    assert_eq!(
        c14n_doc("<doc a=\"x\r\ny\">1\r\n2\r3</doc>"),
        "<doc a=\"x y\">1\n2\n3</doc>"
    );
}

#[test]
fn exc_c14n_subtree_drops_the_ancestors_unused_namespaces() {
    // exc-c14n §2.2: both documents give the same canonical elem2
    let want = "<n1:elem2 xmlns:n1=\"http://example.net\" xml:lang=\"en\">\n       <n3:stuff xmlns:n3=\"ftp://example.org\"></n3:stuff>\n   </n1:elem2>";
    let a = "<n0:local xmlns:n0=\"foo:bar\" xmlns:n3=\"ftp://example.org\">\n   <n1:elem2 xmlns:n1=\"http://example.net\" xml:lang=\"en\">\n       <n3:stuff xmlns:n3=\"ftp://example.org\"/>\n   </n1:elem2>\n</n0:local>";
    let b = "<n2:pdu xmlns:n1=\"http://example.com\" xmlns:n2=\"http://foo.example\" xml:lang=\"fr\" xml:foo=\"bar\">\n   <n1:elem2 xmlns:n1=\"http://example.net\" xml:lang=\"en\">\n       <n3:stuff xmlns:n3=\"ftp://example.org\"/>\n   </n1:elem2>\n</n2:pdu>";
    assert_eq!(c14n_sub(a, "elem2"), want);
    assert_eq!(c14n_sub(b, "elem2"), want);
}

#[test]
fn exc_c14n_namespace_rules() {
    // an inherited prefix used by the apex is declared on it; by an attribute too
    assert_eq!(
        c14n_sub(
            "<r xmlns:p=\"urn:p\" xmlns:q=\"urn:q\"><p:e q:a=\"1\" b=\"2\"><p:f/></p:e></r>",
            "e"
        ),
        "<p:e xmlns:p=\"urn:p\" xmlns:q=\"urn:q\" b=\"2\" q:a=\"1\"><p:f></p:f></p:e>"
    );
    // xmlns="" is not rendered at the apex (nothing to undo), and is under a default namespace
    assert_eq!(
        c14n_sub("<a xmlns=\"urn:x\"><b xmlns=\"\"><c/></b></a>", "b"),
        "<b><c></c></b>"
    );
    assert_eq!(
        c14n_doc("<a xmlns=\"urn:x\"><b xmlns=\"\"><c/></b></a>"),
        "<a xmlns=\"urn:x\"><b xmlns=\"\"><c></c></b></a>"
    );
    // a rebinding of the same prefix is rendered again, then the outer one again
    assert_eq!(
        c14n_doc(
            "<p:a xmlns:p=\"urn:1\"><p:b xmlns:p=\"urn:2\"><p:c xmlns:p=\"urn:1\"/></p:b><p:d/></p:a>"
        ),
        "<p:a xmlns:p=\"urn:1\"><p:b xmlns:p=\"urn:2\"><p:c xmlns:p=\"urn:1\"></p:c></p:b><p:d></p:d></p:a>"
    );
    // declarations sorted: default first, then by prefix; redundant ones dropped
    assert_eq!(
        c14n_doc(
            "<z:a xmlns=\"urn:d\" xmlns:z=\"urn:z\" xmlns:b=\"urn:b\" b:x=\"1\"><y z:q=\"2\"/></z:a>"
        ),
        "<z:a xmlns:b=\"urn:b\" xmlns:z=\"urn:z\" b:x=\"1\"><y xmlns=\"urn:d\" z:q=\"2\"></y></z:a>"
    );
    // PIs inside are kept, comments dropped, CDATA is text, special characters escaped
    assert_eq!(
        c14n_doc("<a><?p  x ?><!--c--><![CDATA[<&>]]>\"'</a>"),
        "<a><?p x ?>&lt;&amp;&gt;\"'</a>"
    );
}

#[test]
fn c14n_excludes_one_subtree() {
    let xml = "<a><b>1</b><s><x/></s><c>2</c></a>";
    let doc = tree::read(xml.as_bytes(), &Limits::default()).unwrap();
    let out = c14n::canonicalize(&doc, &[], Some(&[1]));
    assert_eq!(String::from_utf8(out).unwrap(), "<a><b>1</b><c>2</c></a>");
}

fn read_sig(xml: &str) -> Result<Vec<Signature>, DsigError> {
    let doc = tree::read(xml.as_bytes(), &Limits::default())?;
    signatures(&doc)
}

const SIG_HEAD: &str = "<r xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\"><ds:Signature>";

fn sig_with(signed_info: &str, value: &str) -> String {
    format!(
        "{SIG_HEAD}<ds:SignedInfo>{signed_info}</ds:SignedInfo><ds:SignatureValue>{value}</ds:SignatureValue></ds:Signature></r>"
    )
}

const CM: &str =
    "<ds:CanonicalizationMethod Algorithm=\"http://www.w3.org/2001/10/xml-exc-c14n#\"/>";
const SM: &str =
    "<ds:SignatureMethod Algorithm=\"http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256\"/>";

fn reference(uri: &str, transforms: &str, digest: &str) -> String {
    format!(
        "<ds:Reference URI=\"{uri}\"><ds:Transforms>{transforms}</ds:Transforms><ds:DigestMethod Algorithm=\"http://www.w3.org/2001/04/xmlenc#sha256\"/><ds:DigestValue>{digest}</ds:DigestValue></ds:Reference>"
    )
}

const ENV: &str =
    "<ds:Transform Algorithm=\"http://www.w3.org/2000/09/xmldsig#enveloped-signature\"/>";
const EXC: &str = "<ds:Transform Algorithm=\"http://www.w3.org/2001/10/xml-exc-c14n#\"/>";
const D32: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";

#[test]
fn a_well_formed_signature_is_read() {
    let xml = sig_with(
        &format!("{CM}{SM}{}", reference("", &format!("{ENV}{EXC}"), D32)),
        "AAAA",
    );
    let sigs = read_sig(&xml).unwrap();
    assert_eq!(sigs.len(), 1);
    assert!(sigs[0].is_enveloped());
    assert_eq!(sigs[0].value, vec![0, 0, 0]);
}

#[test]
fn an_empty_inclusive_namespaces_list_is_tolerated() {
    let xml = sig_with(
        &format!(
            "{CM}{SM}{}",
            reference(
                "#a",
                "<ds:Transform Algorithm=\"http://www.w3.org/2001/10/xml-exc-c14n#\"><ec:InclusiveNamespaces xmlns:ec=\"http://www.w3.org/2001/10/xml-exc-c14n#\" PrefixList=\"\"/></ds:Transform>",
                D32
            )
        ),
        "AAAA",
    );
    let sigs = read_sig(&xml).unwrap();
    assert!(!sigs[0].is_enveloped());
}

#[test]
fn malformed_signatures_are_refused_with_the_element_named() {
    let refs = reference("", &format!("{ENV}{EXC}"), D32);
    let cases: Vec<(String, &str)> = vec![
        (
            format!("{SIG_HEAD}</ds:Signature></r>"),
            "missing ds:SignedInfo",
        ),
        (
            format!("{SIG_HEAD}<ds:SignedInfo>{CM}{SM}{refs}</ds:SignedInfo></ds:Signature></r>"),
            "missing ds:SignatureValue",
        ),
        (
            sig_with(&format!("{SM}{refs}"), "AAAA"),
            "where ds:CanonicalizationMethod",
        ),
        (
            sig_with(&format!("{CM}{SM}"), "AAAA"),
            "missing ds:Reference",
        ),
        (
            sig_with(&format!("{CM}{SM}{refs}"), "!!not base64!!"),
            "not valid base64",
        ),
        (
            sig_with(&format!("{CM}{SM}{refs}"), &"A".repeat(10_000)),
            "longer than the 4096 accepted",
        ),
        (
            sig_with(
                &format!(
                    "<ds:CanonicalizationMethod Algorithm=\"http://www.w3.org/TR/2001/REC-xml-c14n-20010315\"/>{SM}{refs}"
                ),
                "AAAA",
            ),
            "is not supported",
        ),
        (
            sig_with(
                &format!(
                    "{CM}<ds:SignatureMethod Algorithm=\"http://www.w3.org/2000/09/xmldsig#rsa-sha1\"/>{refs}"
                ),
                "AAAA",
            ),
            "rsa-sha1",
        ),
        (
            sig_with(
                &format!("{CM}{SM}{}", reference("", &format!("{ENV}{EXC}"), "AAAA")),
                "AAAA",
            ),
            "32 bytes",
        ),
        (
            sig_with(&format!("{CM}{SM}{}", reference("", EXC, D32)), "AAAA"),
            "needs the enveloped-signature transform",
        ),
        (
            sig_with(
                &format!(
                    "{CM}{SM}{}",
                    reference(
                        "#a",
                        "<ds:Transform Algorithm=\"http://www.w3.org/TR/1999/REC-xpath-19991116\"/>",
                        D32
                    )
                ),
                "AAAA",
            ),
            "REC-xpath",
        ),
        (
            sig_with(
                &format!("{CM}{SM}{}", reference("#a", &format!("{EXC}{ENV}"), D32)),
                "AAAA",
            ),
            "expected the transforms",
        ),
        (
            sig_with(
                &format!("{CM}{SM}{}", reference("http://evil.example/x", EXC, D32)),
                "AAAA",
            ),
            "Reference URI",
        ),
        (
            sig_with(
                &format!("{CM}{SM}{}", reference("#xpointer(/)", EXC, D32)),
                "AAAA",
            ),
            "Reference URI",
        ),
        (
            sig_with(
                &format!(
                    "{CM}{SM}<ds:Reference><ds:DigestMethod Algorithm=\"http://www.w3.org/2001/04/xmlenc#sha256\"/><ds:DigestValue>{D32}</ds:DigestValue></ds:Reference>"
                ),
                "AAAA",
            ),
            "missing attribute URI",
        ),
        (
            sig_with(
                &format!(
                    "{CM}{SM}<ds:Reference URI=\"#a\"><ds:Transforms>{EXC}</ds:Transforms><ds:DigestMethod Algorithm=\"http://www.w3.org/2000/09/xmldsig#sha1\"/><ds:DigestValue>{D32}</ds:DigestValue></ds:Reference>"
                ),
                "AAAA",
            ),
            "xmldsig#sha1",
        ),
        (
            sig_with(
                &format!(
                    "{CM}{SM}<ds:Reference URI=\"#a\"><ds:Transforms>{EXC}</ds:Transforms><ds:DigestMethod Algorithm=\"http://www.w3.org/2001/04/xmlenc#sha256\"/></ds:Reference>"
                ),
                "AAAA",
            ),
            "missing ds:DigestValue",
        ),
        (
            sig_with(
                &format!(
                    "{CM}{SM}<ds:Reference URI=\"#a\"><ds:DigestMethod Algorithm=\"http://www.w3.org/2001/04/xmlenc#sha256\"/><ds:DigestValue>{D32}</ds:DigestValue></ds:Reference>"
                ),
                "AAAA",
            ),
            "expected the transforms",
        ),
        (
            sig_with(
                &format!(
                    "{CM}{SM}{}",
                    reference(
                        "#a",
                        "<ds:Transform Algorithm=\"http://www.w3.org/2001/10/xml-exc-c14n#\"><ec:InclusiveNamespaces xmlns:ec=\"http://www.w3.org/2001/10/xml-exc-c14n#\" PrefixList=\"ds\"/></ds:Transform>",
                        D32
                    )
                ),
                "AAAA",
            ),
            "PrefixList",
        ),
        (
            sig_with(&format!("{CM}text{SM}{refs}"), "AAAA"),
            "text where only elements may appear",
        ),
    ];
    for (xml, want) in cases {
        let err = read_sig(&xml).expect_err(&xml).to_string();
        assert!(
            err.contains(want),
            "{err:?} should mention {want:?} for\n{xml}"
        );
        assert!(
            err.contains("/r/Signature"),
            "{err:?} should name the element"
        );
    }
}

#[test]
fn ids_must_be_unique_and_present() {
    let doc = tree::read(
        b"<a><b Id=\"x\"/><c id=\"y\"/><d xml:id=\"y\"/></a>",
        &Limits::default(),
    )
    .unwrap();
    assert_eq!(find_id(&doc.root, "x", "t").unwrap(), vec![0]);
    assert!(matches!(
        find_id(&doc.root, "y", "t"),
        Err(DsigError::DuplicateId { count: 2, .. })
    ));
    assert!(matches!(
        find_id(&doc.root, "z", "t"),
        Err(DsigError::MissingReference { .. })
    ));
}
