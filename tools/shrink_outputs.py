#!/usr/bin/env python
"""Re-encode the PNG outputs stored in notebooks as 256-colour palette PNGs (about 4x smaller, same picture).

    python tools/shrink_outputs.py [nbs/X.ipynb ...]     # default: every notebook in nbs/

Run it after `nbdev-test ... --save`, before committing. Already-palette images are left alone, so it is idempotent."""
import base64, io, sys
from pathlib import Path
import nbformat
from PIL import Image

def shrink_png(data:bytes) -> bytes:
    "The PNG `data` as a 256-colour octree palette PNG, or `data` itself if it is already a palette image or would not shrink."
    im = Image.open(io.BytesIO(data))
    if im.mode == 'P': return data
    out = io.BytesIO()
    im.convert('RGB').quantize(colors=256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE).save(out, format='PNG', optimize=True)
    return out.getvalue() if out.tell() < len(data) else data

def shrink_notebook(path:Path) -> tuple:
    "Shrink every PNG output of the notebook at `path` in place; returns (bytes before, bytes after) of its images."
    nb = nbformat.read(path, as_version=4)
    before = after = 0
    for cell in nb.cells:
        for out in cell.get('outputs', []):
            png = out.get('data', {}).get('image/png')
            if not png: continue
            old = base64.b64decode(png); new = shrink_png(old)
            before += len(old); after += len(new)
            if new is not old: out['data']['image/png'] = base64.b64encode(new).decode()
    if after < before: nbformat.write(nb, path)
    return before, after

if __name__ == '__main__':
    paths = [Path(p) for p in sys.argv[1:]] or sorted(Path('nbs').rglob('*.ipynb'))
    for p in paths:
        b, a = shrink_notebook(p)
        if b: print(f"{p}: images {b // 1024} KB -> {a // 1024} KB")
