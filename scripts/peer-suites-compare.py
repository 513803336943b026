#!/usr/bin/env python3
"""Compares the JUnit results scripts/peer-suites.sh left in DIR: for every test case,
its outcome without the shim (plain) against each shim configuration (interface, any).

usage: peer-suites-compare.py DIR ALLOW-FILE MODULE...
ALLOW-FILE: lines "config test-id-glob reason" (config: interface, any or *).
Exit 1 when a difference is not explained by the allow-list.
"""
import fnmatch, os, sys, xml.etree.ElementTree as ET
work, allow_file, mods = sys.argv[1], sys.argv[2], sys.argv[3:]
allow = []
for line in open(allow_file):
    line = line.strip()
    if line and not line.startswith('#'):
        allow.append(line.split(None, 2))

def outcomes(cfg, mod):
    path = os.path.join(work, cfg, mod + '.xml')
    res = {}
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        rc = open(os.path.join(work, cfg, mod + '.rc')).read().strip()
        return {mod + ' (whole module)': 'no-result rc=' + rc}
    for tc in root.iter('testcase'):
        name = tc.get('name', '?')
        st = 'ok'
        for child in tc:
            if child.tag in ('failure', 'error'):
                st = child.tag
            elif child.tag == 'skipped':
                st = 'skipped'
        res[name] = st
    if not res:
        rc = open(os.path.join(work, cfg, mod + '.rc')).read().strip()
        res[mod + ' (whole module)'] = 'empty rc=' + rc
    return res

unexplained = 0
used = set()
rows = []
for mod in mods:
    base = outcomes('plain', mod)
    for cfg in os.environ.get('CONFIGS', 'interface any').split():
        got = outcomes(cfg, mod)
        for name in sorted(set(base) | set(got)):
            a, b = base.get(name, 'absent'), got.get(name, 'absent')
            if a == b:
                continue
            why = None
            for i, (c, pat, reason) in enumerate(allow):
                if c in (cfg, '*') and fnmatch.fnmatchcase(name, pat):
                    why = reason
                    used.add(i)
                    break
            if why is None:
                unexplained += 1
            rows.append((cfg, name, a, b, why or 'UNEXPLAINED'))
    n = len(base)
    fails = sum(1 for v in base.values() if v in ('failure', 'error'))
    print(f'{mod}: {n} tests, {fails} failing without the shim')
if rows:
    print()
    print(f"{'config':<10} {'test':<90} {'plain':<8} {'shim':<8} reason")
    for cfg, name, a, b, why in rows:
        print(f'{cfg:<10} {name[:90]:<90} {a:<8} {b:<8} {why}')
print()
print(f'peer-suites: {len(rows)} differences, {unexplained} unexplained')
sys.exit(1 if unexplained else 0)
