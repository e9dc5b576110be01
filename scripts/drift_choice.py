import json, numpy as np, sys
from napari_qpi import extract
from napari_qpi.io.pipeline import auto_steps
from napari_qpi.evaluation.score import score
src = sys.argv[1]
if src == 'own':
    from napari_qpi.evaluation.instrument import make_instrument_cases
    cases = [(c.index, c.observation, c.kernel, c.positions, c.artefacts) for c in make_instrument_cases(int(sys.argv[2]))]
else:
    z=np.load('/work/shared/data/instrument/maps.npz'); meta=json.loads(bytes(z['meta_json']).decode())
    cases=[(m['index'], z[f"{m['index']:02d}_observation"], z[f"{m['index']:02d}_kernel"], z[f"{m['index']:02d}_positions"], m['artefacts']) for m in meta]
out=[]
for i,o,k,p,a in cases:
    pass
    st=auto_steps(o)
    names=[s['step'] for s in st]
    if 'bragg' not in names: continue
    alt=[s for s in st if s['step']!='bragg']+[{'step':'drift'},{'step':'bragg'}]
    row=[i]
    for pre in (st, alt):
        try:
            r=extract(o, method='two-stage', preprocess=pre)
            row += [score(k,r.kernel)['tail_similarity'], r.info['scatterers_found']/len(p)]
        except ValueError as e:
            row += [np.nan, np.nan]
    print(row, a, flush=True); out.append(row)
out=np.array(out,float)
print('median tail auto %.3f  +drift %.3f | found/true auto %.1f +drift %.1f'%tuple(np.nanmedian(out[:,1:],0)[[0,2,1,3]]))
