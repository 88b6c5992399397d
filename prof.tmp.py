import json,collections,glob
d=json.load(open(sorted(glob.glob('/tmp/scratch/prof_*.json'))[-1]))
agg=collections.defaultdict(float); cnt=collections.Counter(); names=collections.defaultdict(float)
runs=collections.Counter(e['name'] for e in d if e.get('cat')=='Session' and e['name']=='model_run')['model_run']
skip=True
for e in d:
    if e.get('cat')=='Node' and e['name'].endswith('_kernel_time'):
        op=e['args'].get('op_name'); agg[op]+=e['dur']; cnt[op]+=1; names[e['name']]+=e['dur']
for k,v in sorted(agg.items(), key=lambda x:-x[1]): print(f"{k:30s} {v/runs/1000:8.1f} ms  n={cnt[k]//runs}")
print('total', sum(agg.values())/runs/1000)
print('---')
for k,v in sorted(names.items(), key=lambda x:-x[1])[:14]: print(f"{k:50s} {v/runs/1000:8.1f}")
