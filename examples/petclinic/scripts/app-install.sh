# Python dependencies come from the wheelhouse uploaded from the controller: a DR
# site must come up when the primary's region and its package mirrors are down.
# Pure-Python wheels are zip files; unpacking them is a complete install (unzip if the
# node has it, it is cheaper than starting Python on every node at once).
APP={{ inputs.app_dir | safe_dir | quote }}
command -v python3 >/dev/null || { echo "python3 is missing on this node"; exit 1; }
ls "$APP"/wheelhouse/*.whl >/dev/null 2>&1 ||
  { echo "no wheels in $APP/wheelhouse: run examples/petclinic/make-wheelhouse"; exit 1; }
rm -rf "$APP/lib" && mkdir -p "$APP/lib"
if command -v unzip >/dev/null; then
  for wheel in "$APP"/wheelhouse/*.whl; do unzip -q -o "$wheel" -d "$APP/lib"; done
else
  python3 -c 'import glob,sys,zipfile; [zipfile.ZipFile(w).extractall(sys.argv[1] + "/lib") for w in glob.glob(sys.argv[1] + "/wheelhouse/*.whl")]' "$APP"
fi
# Byte-compile now: install overlaps the database's set-up, while a first import at
# start would compile on every node at once, on the critical path.
python3 -m compileall -q "$APP/lib" >/dev/null
