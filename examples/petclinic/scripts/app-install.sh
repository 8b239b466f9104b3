# Python dependencies come from the wheelhouse uploaded from the controller: a DR
# site must come up when the primary's region and its package mirrors are down.
# Pure-Python wheels are zip files; unpacking them is a complete install.
APP={{ inputs.app_dir }}
command -v python3 >/dev/null || { echo "python3 is missing on this node"; exit 1; }
rm -rf "$APP/lib" && mkdir -p "$APP/lib"
python3 - "$APP" <<'PY'
import glob, sys, zipfile
app = sys.argv[1]
wheels = glob.glob(app + "/wheelhouse/*.whl")
if not wheels:
    sys.exit("no wheels in " + app + "/wheelhouse: run examples/petclinic/make-wheelhouse")
for wheel in wheels:
    zipfile.ZipFile(wheel).extractall(app + "/lib")
PY
