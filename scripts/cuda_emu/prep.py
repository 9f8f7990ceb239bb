#!/usr/bin/env python3
"""prep.py SRC DST: kernels/cuda's sources as g++ takes them under emu.h:
launches `k<<<cfg>>>(args);` become `emu_launch([&] { k(args); }, cfg);`,
dynamic shared memory a buffer of the emulator, cp.async plain copies."""
import os
import re
import sys

src, dst = sys.argv[1], sys.argv[2]
LAUNCH = re.compile(r'([A-Za-z_][\w:]*(?:<[^;<>]*>)?)\s*<<<')


def rewrite_launches(s):
    out, i = [], 0
    while (m := LAUNCH.search(s, i)):
        out.append(s[i:m.start()])
        j = s.index('>>>', m.end())
        k = s.index('(', j)
        depth, e = 0, k
        while True:  # the argument list's closing parenthesis
            depth += {'(': 1, ')': -1}.get(s[e], 0)
            if depth == 0:
                break
            e += 1
        out.append('emu_launch([&] { %s(%s); }, %s)' % (m.group(1), s[k + 1:e], s[m.end():j]))
        i = e + 1
    return ''.join(out + [s[i:]])


def body(s, signature, new):
    """Replaces the body of the function whose definition starts with signature."""
    i = s.index(signature)
    b, e = s.index('{', i), s.index('\n}', i)
    return s[:b] + '{\n' + new + s[e:]


os.makedirs(dst, exist_ok=True)
for f in os.listdir(src):
    if not f.endswith(('.cu', '.cuh', '.c', '.h')):
        continue
    s = open(os.path.join(src, f)).read()
    if f == 'cuda_common.cuh':
        s = body(s, 'void cp_async16(', '\tif (valid)\n\t\tmemcpy(smem, gmem, 16);\n\telse\n\t\tmemset(smem, 0, 16);')
        s = body(s, 'void cp_async_commit(', '')
        s = body(s, 'void cp_async_wait(', '')
        assert 'asm' not in s, 'inline PTX the emulator does not know'
    s = re.sub(r'extern __shared__ (__align__\(\d+\) )?unsigned char (\w+)\[\];',
               r'unsigned char *\2 = emu_dyn_smem();', s)
    if f.endswith('.cu'):
        s = rewrite_launches(s)
    open(os.path.join(dst, f), 'w').write(s)
