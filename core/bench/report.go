package bench

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"html/template"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Report file names in the output directory.
const (
	FileJSON     = "results.json"
	FileCSV      = "results.csv"
	FileMarkdown = "report.md"
	FileHTML     = "report.html"
)

// WriteReports writes the four reports into dir (made if missing).
func WriteReports(dir string, res *Result) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("making the report directory: %w", err)
	}
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, FileJSON), append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("writing the JSON report: %w", err)
	}
	if err := writeCSV(filepath.Join(dir, FileCSV), res); err != nil {
		return fmt.Errorf("writing the CSV report: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, FileMarkdown), []byte(Markdown(res)), 0o644); err != nil {
		return fmt.Errorf("writing the Markdown report: %w", err)
	}
	h, err := HTML(res)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, FileHTML), []byte(h), 0o644); err != nil {
		return fmt.Errorf("writing the HTML report: %w", err)
	}
	return nil
}

// columns are the label and value names over all rows, sorted.
func columns(rows []Row) (labels, values []string) {
	ls, vs := map[string]bool{}, map[string]bool{}
	for _, r := range rows {
		for k := range r.Labels {
			ls[k] = true
		}
		for k := range r.Values {
			vs[k] = true
		}
	}
	return sortedKeys(ls), sortedKeys(vs)
}

func writeCSV(path string, res *Result) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	w := csv.NewWriter(f)
	labels, values := columns(res.Rows)
	w.Write(append(append([]string{"scenario", "guests", "run"}, labels...), values...))
	for _, r := range res.Rows {
		rec := []string{res.Scenario, strconv.Itoa(r.Guests), strconv.Itoa(r.Run)}
		for _, l := range labels {
			rec = append(rec, r.Labels[l])
		}
		for _, v := range values {
			if x, ok := r.Values[v]; ok {
				rec = append(rec, strconv.FormatFloat(x, 'g', -1, 64))
			} else {
				rec = append(rec, "")
			}
		}
		w.Write(rec)
	}
	w.Flush()
	if err := w.Error(); err != nil {
		return err
	}
	return f.Close()
}

// Markdown is the report a person reads first: verdict, then the table.
func Markdown(res *Result) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# loco bench: %s\n\n", res.Scenario)
	fmt.Fprintf(&b, "%s\n\n", res.Description)
	fmt.Fprintf(&b, "Spec `%s`, guests %v, %d run(s) each; %s, %d CPUs; started %s, took %.0f s; plugin %s.\n\n",
		res.Spec, res.Guests, res.Runs, res.Host, res.CPUs, res.Started.Format("2006-01-02 15:04:05 MST"), res.Seconds, res.Plugin)
	switch {
	case len(res.Thresholds) == 0:
		b.WriteString("No thresholds.\n\n")
	case res.Passed:
		fmt.Fprintf(&b, "**PASS**: %s\n\n", strings.Join(res.Thresholds, "; "))
	default:
		fmt.Fprintf(&b, "**FAIL**:\n\n")
		for _, f := range res.Failures {
			fmt.Fprintf(&b, "- %s\n", f)
		}
		b.WriteString("\n")
	}
	labels, values := columns(res.Rows)
	head := append(append([]string{"guests", "run"}, labels...), values...)
	fmt.Fprintf(&b, "| %s |\n|%s\n", strings.Join(head, " | "), strings.Repeat("---|", len(head)))
	for _, r := range res.Rows {
		cells := []string{strconv.Itoa(r.Guests), strconv.Itoa(r.Run)}
		for _, l := range labels {
			cells = append(cells, r.Labels[l])
		}
		for _, v := range values {
			if x, ok := r.Values[v]; ok {
				cells = append(cells, formatCell(x))
			} else {
				cells = append(cells, "")
			}
		}
		fmt.Fprintf(&b, "| %s |\n", strings.Join(cells, " | "))
	}
	return b.String()
}

func formatCell(v float64) string {
	switch {
	case v == float64(int64(v)) && v < 1e9 && v > -1e9:
		return strconv.FormatInt(int64(v), 10)
	case v >= 100 || v <= -100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 1 || v <= -1:
		return strconv.FormatFloat(v, 'f', 2, 64)
	default:
		return strconv.FormatFloat(v, 'g', 3, 64)
	}
}

// plot is one figure of the HTML report.
type plot struct {
	Title string
	SVG   template.HTML
}

// HTML is a self-contained page (inline CSS and SVG, no script, nothing
// fetched), so it opens offline and can be mailed or archived as is.
func HTML(res *Result) (string, error) {
	labels, values := columns(res.Rows)
	var plots []plot
	// Each value across guest counts: one point per row, the mean joined.
	for _, v := range values {
		var pts []point
		for _, r := range res.Rows {
			if x, ok := r.Values[v]; ok {
				pts = append(pts, point{float64(r.Guests), x})
			}
		}
		if len(pts) > 0 {
			plots = append(plots, plot{Title: v + " by guest count", SVG: template.HTML(scatterSVG(v, pts))})
		}
	}
	// Raw samples: a histogram and a CDF per name, a series per guest count.
	names := map[string]bool{}
	for _, r := range res.Rows {
		for k := range r.Samples {
			names[k] = true
		}
	}
	for _, name := range sortedKeys(names) {
		byN := map[int][]float64{}
		for _, r := range res.Rows {
			byN[r.Guests] = append(byN[r.Guests], r.Samples[name]...)
		}
		var series []sampleSeries
		for _, n := range sortedInts(byN) {
			if len(byN[n]) > 0 {
				s := append([]float64(nil), byN[n]...)
				sort.Float64s(s)
				series = append(series, sampleSeries{Name: fmt.Sprintf("%d guests", n), Values: s})
			}
		}
		if len(series) == 0 {
			continue
		}
		plots = append(plots, plot{Title: name + ": histogram", SVG: template.HTML(histogramSVG(name, series))})
		plots = append(plots, plot{Title: name + ": CDF", SVG: template.HTML(cdfSVG(name, series))})
	}
	type cell struct {
		Text string
		Bad  bool
	}
	failed := map[*Row]bool{}
	for _, f := range res.Failures {
		if f.Row != nil {
			failed[f.Row] = true
		}
	}
	var rows [][]cell
	for i := range res.Rows {
		r := &res.Rows[i]
		cells := []cell{{Text: strconv.Itoa(r.Guests)}, {Text: strconv.Itoa(r.Run)}}
		for _, l := range labels {
			cells = append(cells, cell{Text: r.Labels[l]})
		}
		for _, v := range values {
			c := cell{}
			if x, ok := r.Values[v]; ok {
				c.Text = formatCell(x)
			}
			cells = append(cells, c)
		}
		if failed[r] {
			for j := range cells {
				cells[j].Bad = true
			}
		}
		rows = append(rows, cells)
	}
	var fails []string
	for _, f := range res.Failures {
		fails = append(fails, f.String())
	}
	var b strings.Builder
	err := htmlPage.Execute(&b, map[string]any{
		"R": res, "Head": append(append([]string{"guests", "run"}, labels...), values...), "Rows": rows,
		"Plots": plots, "Fails": fails, "Started": res.Started.Format("2006-01-02 15:04:05 MST"),
	})
	if err != nil {
		return "", fmt.Errorf("rendering the HTML report: %w", err)
	}
	return b.String(), nil
}

func sortedInts[V any](m map[int]V) []int {
	ks := make([]int, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Ints(ks)
	return ks
}

var htmlPage = template.Must(template.New("report").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>loco bench: {{.R.Scenario}}</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
td, th { border: 1px solid #ccc; padding: 2px 8px; text-align: right; }
th { background: #f3f3f3; }
td.bad { background: #fdd; }
.verdict { font-weight: bold; padding: 4px 10px; display: inline-block; }
.pass { background: #dfd; } .fail { background: #fdd; }
.plots { display: flex; flex-wrap: wrap; gap: 16px; }
figure { margin: 0; border: 1px solid #ddd; padding: 8px; }
figcaption { font-weight: bold; margin-bottom: 4px; }
</style></head><body>
<h1>loco bench: {{.R.Scenario}}</h1>
<p>{{.R.Description}}</p>
<p>Spec <code>{{.R.Spec}}</code>, guests {{.R.Guests}}, {{.R.Runs}} run(s) each; {{.R.Host}}, {{.R.CPUs}} CPUs; started {{.Started}}, took {{printf "%.0f" .R.Seconds}} s; plugin {{.R.Plugin}}.</p>
{{if .R.Thresholds}}{{if .R.Passed}}<p class="verdict pass" id="verdict">PASS</p>{{else}}<p class="verdict fail" id="verdict">FAIL</p>
<ul>{{range .Fails}}<li>{{.}}</li>{{end}}</ul>{{end}}
<p>Thresholds: {{range $i, $t := .R.Thresholds}}{{if $i}}; {{end}}<code>{{$t}}</code>{{end}}</p>{{else}}<p id="verdict">No thresholds.</p>{{end}}
<div class="plots">{{range .Plots}}<figure><figcaption>{{.Title}}</figcaption>{{.SVG}}</figure>{{end}}</div>
<table><tr>{{range .Head}}<th>{{.}}</th>{{end}}</tr>
{{range .Rows}}<tr>{{range .}}<td{{if .Bad}} class="bad"{{end}}>{{.Text}}</td>{{end}}</tr>
{{end}}</table>
</body></html>
`))
