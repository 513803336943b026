//! Byte builders for Mach-O test fixtures: thin images (32/64-bit, either byte order)
//! with the load commands the reader looks at, an embedded code signature
//! (SuperBlob, CodeDirectory, XML or DER entitlements), and universal files.

use super::*;

/// One image to build.
#[derive(Clone)]
pub struct Image {
    pub arch: Arch,
    pub filetype: u32,
    pub wide: bool,
    pub big_endian: bool,
    pub dylinker: Option<&'static str>,
    pub dylibs: Vec<&'static str>,
    pub install_name: Option<&'static str>,
    /// (segment, section) pairs, one segment command per pair.
    pub sections: Vec<(&'static str, &'static str)>,
    pub signature: Option<Sig>,
}

/// A code signature to embed.
#[derive(Clone, Default)]
pub struct Sig {
    pub flags: u32,
    pub identifier: &'static str,
    pub team: Option<&'static str>,
    pub platform: u8,
    pub xml_entitlements: Option<String>,
    pub der_entitlements: Option<Vec<u8>>,
    /// Put the CodeDirectory in the first alternate slot only.
    pub alternate_only: bool,
}

impl Image {
    /// An arm64 executable linked by the usual toolchain: dyld, libSystem.
    pub fn exe(arch: Arch) -> Self {
        Image {
            arch,
            filetype: MH_EXECUTE,
            wide: true,
            big_endian: false,
            dylinker: Some("/usr/lib/dyld"),
            dylibs: vec!["/usr/lib/libSystem.B.dylib"],
            install_name: None,
            sections: vec![("__TEXT", "__text")],
            signature: None,
        }
    }

    pub fn dylib(arch: Arch) -> Self {
        Image {
            filetype: MH_DYLIB,
            dylinker: None,
            install_name: Some("@rpath/libmifshim.dylib"),
            sections: vec![("__TEXT", "__text"), ("__DATA", "__interpose")],
            ..Image::exe(arch)
        }
    }

    pub fn signed(mut self, sig: Sig) -> Self {
        self.signature = Some(sig);
        self
    }

    fn u32(&self, v: u32) -> [u8; 4] {
        if self.big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    }
    fn u64(&self, v: u64) -> [u8; 8] {
        if self.big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    }

    fn str_cmd(&self, cmd: u32, name_at: u32, fixed: &[u32], s: &str) -> Vec<u8> {
        let mut c = Vec::new();
        let len = (name_at as usize + s.len() + 1).next_multiple_of(8);
        c.extend(self.u32(cmd));
        c.extend(self.u32(len as u32));
        c.extend(self.u32(name_at));
        for f in fixed {
            c.extend(self.u32(*f));
        }
        c.extend(s.as_bytes());
        c.resize(len, 0);
        c
    }

    fn segment_cmd(&self, seg: &str, sect: &str) -> Vec<u8> {
        let name = |s: &str| {
            let mut n = [0u8; 16];
            n[..s.len()].copy_from_slice(s.as_bytes());
            n
        };
        let mut c = Vec::new();
        let (cmd, head, sect_len) = if self.wide {
            (LC_SEGMENT_64, 72, 80)
        } else {
            (LC_SEGMENT, 56, 68)
        };
        c.extend(self.u32(cmd));
        c.extend(self.u32((head + sect_len) as u32));
        c.extend(name(seg));
        let word = |c: &mut Vec<u8>, v: u64| {
            if self.wide {
                c.extend(self.u64(v))
            } else {
                c.extend(self.u32(v as u32))
            }
        };
        for _ in 0..4 {
            word(&mut c, 0); // vmaddr, vmsize, fileoff, filesize
        }
        for v in [7, 5, 1, 0] {
            c.extend(self.u32(v)); // maxprot, initprot, nsects, flags
        }
        assert_eq!(c.len(), head);
        c.extend(name(sect));
        c.extend(name(seg));
        c.resize(head + sect_len, 0);
        c
    }

    /// The image's bytes.
    pub fn bytes(&self) -> Vec<u8> {
        let mut cmds: Vec<Vec<u8>> = Vec::new();
        if let Some(d) = self.dylinker {
            cmds.push(self.str_cmd(LC_LOAD_DYLINKER, 12, &[], d));
        }
        if let Some(n) = self.install_name {
            cmds.push(self.str_cmd(LC_ID_DYLIB, 24, &[2, 0x10000, 0x10000], n));
        }
        for (i, d) in self.dylibs.iter().enumerate() {
            let cmd = if i % 2 == 0 {
                LC_LOAD_DYLIB
            } else {
                LC_LOAD_WEAK_DYLIB
            };
            cmds.push(self.str_cmd(cmd, 24, &[2, 0x10000, 0x10000], d));
        }
        for (seg, sect) in &self.sections {
            cmds.push(self.segment_cmd(seg, sect));
        }
        let header_len = if self.wide { 32 } else { 28 };
        let signature = self.signature.as_ref().map(signature_bytes);
        if signature.is_some() {
            cmds.push(vec![0; 16]); // patched below
        }
        let sizeofcmds: usize = cmds.iter().map(Vec::len).sum();
        let sig_off = (header_len + sizeofcmds).next_multiple_of(16);
        if let Some(sig) = &signature {
            let last = cmds.last_mut().expect("pushed");
            last.clear();
            for v in [LC_CODE_SIGNATURE, 16, sig_off as u32, sig.len() as u32] {
                last.extend(self.u32(v));
            }
        }
        // Written in the image's byte order: a big-endian image reads as MH_CIGAM*.
        let magic = if self.wide { MH_MAGIC_64 } else { MH_MAGIC };
        let mut out = Vec::new();
        out.extend(self.u32(magic));
        out.extend(self.u32(self.arch.cputype as u32));
        out.extend(self.u32(self.arch.cpusubtype as u32));
        out.extend(self.u32(self.filetype));
        out.extend(self.u32(cmds.len() as u32));
        out.extend(self.u32(sizeofcmds as u32));
        out.extend(self.u32(0x0020_0085)); // MH_NOUNDEFS | MH_DYLDLINK | MH_TWOLEVEL | MH_PIE
        if self.wide {
            out.extend(self.u32(0));
        }
        for c in &cmds {
            out.extend(c);
        }
        if let Some(sig) = signature {
            out.resize(sig_off, 0);
            out.extend(sig);
        }
        out
    }
}

fn blob(magic: u32, body: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend(magic.to_be_bytes());
    b.extend(((body.len() + 8) as u32).to_be_bytes());
    b.extend(body);
    b
}

/// A CodeDirectory (version 0x20400) with the identifier and team after its header.
fn code_directory(sig: &Sig) -> Vec<u8> {
    let ident_off = 88u32;
    let team_off = ident_off + sig.identifier.len() as u32 + 1;
    let mut cd = Vec::new();
    let w = |cd: &mut Vec<u8>, v: u32| cd.extend(v.to_be_bytes());
    w(&mut cd, CSMAGIC_CODEDIRECTORY);
    w(&mut cd, 0); // length, patched
    w(&mut cd, 0x20400);
    w(&mut cd, sig.flags);
    w(&mut cd, 0); // hashOffset
    w(&mut cd, ident_off);
    w(&mut cd, 0); // nSpecialSlots
    w(&mut cd, 0); // nCodeSlots
    w(&mut cd, 0x1000); // codeLimit
    cd.extend([32, 2, sig.platform, 12]); // hashSize, hashType (SHA-256), platform, pageSize
    w(&mut cd, 0); // spare2
    w(&mut cd, 0); // scatterOffset
    w(&mut cd, if sig.team.is_some() { team_off } else { 0 });
    w(&mut cd, 0); // spare3
    cd.extend(0u64.to_be_bytes()); // codeLimit64
    cd.extend([0u8; 24]); // execSegBase, execSegLimit, execSegFlags
    assert_eq!(cd.len(), ident_off as usize);
    cd.extend(sig.identifier.as_bytes());
    cd.push(0);
    if let Some(t) = sig.team {
        cd.extend(t.as_bytes());
        cd.push(0);
    }
    let len = cd.len() as u32;
    cd[4..8].copy_from_slice(&len.to_be_bytes());
    cd
}

/// The embedded-signature SuperBlob for `sig`.
pub fn signature_bytes(sig: &Sig) -> Vec<u8> {
    let cd_slot = if sig.alternate_only {
        CSSLOT_ALTERNATE_CODEDIRECTORIES
    } else {
        CSSLOT_CODEDIRECTORY
    };
    let mut blobs: Vec<(u32, Vec<u8>)> = vec![(cd_slot, code_directory(sig))];
    if let Some(x) = &sig.xml_entitlements {
        blobs.push((
            CSSLOT_ENTITLEMENTS,
            blob(CSMAGIC_EMBEDDED_ENTITLEMENTS, x.as_bytes()),
        ));
    }
    if let Some(d) = &sig.der_entitlements {
        blobs.push((
            CSSLOT_DER_ENTITLEMENTS,
            blob(CSMAGIC_EMBEDDED_DER_ENTITLEMENTS, d),
        ));
    }
    let mut off = 12 + 8 * blobs.len();
    let mut index: Vec<u8> = Vec::new();
    let mut data: Vec<u8> = Vec::new();
    for (slot, b) in &blobs {
        index.extend(slot.to_be_bytes());
        index.extend((off as u32).to_be_bytes());
        off += b.len();
        data.extend(b);
    }
    let mut out = Vec::new();
    out.extend(CSMAGIC_EMBEDDED_SIGNATURE.to_be_bytes());
    out.extend(((12 + index.len() + data.len()) as u32).to_be_bytes());
    out.extend((blobs.len() as u32).to_be_bytes());
    out.extend(index);
    out.extend(data);
    out
}

/// A universal file holding `images` (`fat_arch_64` entries when `wide`).
pub fn fat(images: &[Image], wide: bool) -> Vec<u8> {
    let bodies: Vec<Vec<u8>> = images.iter().map(Image::bytes).collect();
    let entry = if wide { 32 } else { 20 };
    let mut offset = (8 + entry * images.len()).next_multiple_of(0x1000);
    let mut out = Vec::new();
    out.extend(if wide { FAT_MAGIC_64 } else { FAT_MAGIC }.to_be_bytes());
    out.extend((images.len() as u32).to_be_bytes());
    let mut placed = Vec::new();
    for (img, body) in images.iter().zip(&bodies) {
        out.extend((img.arch.cputype as u32).to_be_bytes());
        out.extend((img.arch.cpusubtype as u32).to_be_bytes());
        if wide {
            out.extend((offset as u64).to_be_bytes());
            out.extend((body.len() as u64).to_be_bytes());
            out.extend(12u32.to_be_bytes());
            out.extend(0u32.to_be_bytes());
        } else {
            out.extend((offset as u32).to_be_bytes());
            out.extend((body.len() as u32).to_be_bytes());
            out.extend(12u32.to_be_bytes());
        }
        placed.push(offset);
        offset = (offset + body.len()).next_multiple_of(0x1000);
    }
    for (at, body) in placed.into_iter().zip(bodies) {
        out.resize(at, 0);
        out.extend(body);
    }
    out
}

/// An XML entitlements plist with these booleans (and a string entitlement and a
/// nested dictionary, which the reader must not confuse with them).
pub fn xml_entitlements(ents: &[(&str, bool)]) -> String {
    let mut s = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" \"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n<plist version=\"1.0\">\n<dict>\n\t<key>com.apple.application-identifier</key>\n\t<string>TEAM.com.example</string>\n\t<key>com.example.nested</key>\n\t<dict>\n\t\t<key>com.apple.security.cs.disable-library-validation</key>\n\t\t<true/>\n\t</dict>\n",
    );
    for (k, v) in ents {
        s.push_str(&format!(
            "\t<key>{k}</key>\n\t<{}/>\n",
            if *v { "true" } else { "false" }
        ));
    }
    s.push_str("</dict>\n</plist>\n");
    s
}

fn tlv(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    if body.len() < 0x80 {
        out.push(body.len() as u8);
    } else if body.len() < 0x100 {
        out.extend([0x81, body.len() as u8]);
    } else {
        out.extend([0x82, (body.len() >> 8) as u8, body.len() as u8]);
    }
    out.extend(body);
    out
}

/// DER entitlements as `codesign` writes them, with these booleans and one string.
pub fn der_entitlements(ents: &[(&str, bool)]) -> Vec<u8> {
    let mut set = Vec::new();
    let mut pair = tlv(0x0c, b"com.apple.application-identifier");
    pair.extend(tlv(0x0c, b"TEAM.com.example"));
    set.extend(tlv(0x30, &pair));
    for (k, v) in ents {
        let mut pair = tlv(0x0c, k.as_bytes());
        pair.extend(tlv(0x01, &[if *v { 0xff } else { 0 }]));
        set.extend(tlv(0x30, &pair));
    }
    let dict = tlv(0xb0, &tlv(0x31, &set));
    let mut app = tlv(0x02, &[1]);
    app.extend(dict);
    tlv(0x70, &app)
}
