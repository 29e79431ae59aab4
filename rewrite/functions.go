package rewrite

import (
	"strings"

	pg "github.com/pganalyze/pg_query_go/v5"
)

// allowedFunctions is the built-in allowlist: functions that compute on their
// arguments and read nothing else. A call must name one of them unqualified
// or in schema pg_catalog; everything else is refused, because a function
// can read anything (PL/pgSQL, SECURITY DEFINER, C) and only a list of known
// ones is sound. greatest, least, coalesce and nullif are syntax (their own
// nodes), listed only for the function-call spelling some tools emit.
var allowedFunctions = toSet(`
pg_advisory_unlock_all
count sum avg min max bool_and bool_or every string_agg array_agg json_agg jsonb_agg
json_object_agg jsonb_object_agg stddev stddev_pop stddev_samp variance var_pop var_samp
bit_and bit_or percentile_cont percentile_disc mode
row_number rank dense_rank percent_rank cume_dist ntile lag lead first_value last_value nth_value
lower upper length char_length character_length octet_length bit_length substr substring
trim btrim ltrim rtrim replace concat concat_ws left right position strpos split_part lpad rpad
initcap repeat reverse md5 sha256 sha512 format regexp_replace regexp_match regexp_matches
regexp_split_to_array regexp_split_to_table starts_with translate to_char to_number to_date
to_timestamp ascii chr quote_literal quote_ident quote_nullable overlay normalize
abs ceil ceiling floor round trunc mod power pow sqrt cbrt sign div exp ln log log10 pi
random degrees radians sin cos tan asin acos atan atan2 width_bucket gcd lcm scale
now date_trunc date_part extract age make_date make_time make_timestamp make_timestamptz
make_interval clock_timestamp statement_timestamp transaction_timestamp timezone
justify_days justify_hours justify_interval isfinite date_bin
json_build_object jsonb_build_object json_build_array jsonb_build_array to_json to_jsonb
json_extract_path json_extract_path_text jsonb_extract_path jsonb_extract_path_text jsonb_set
jsonb_insert jsonb_array_length json_array_length jsonb_typeof json_typeof jsonb_strip_nulls
json_strip_nulls jsonb_pretty row_to_json array_to_json json_object jsonb_object
jsonb_array_elements jsonb_array_elements_text json_array_elements json_array_elements_text
jsonb_each jsonb_each_text json_each json_each_text jsonb_object_keys json_object_keys
jsonb_path_query jsonb_path_exists jsonb_path_match jsonb_path_query_array jsonb_path_query_first
array_length array_lower array_upper array_ndims array_dims cardinality array_position
array_positions array_remove array_replace array_append array_prepend array_cat unnest
array_to_string string_to_array array_fill
generate_series generate_subscripts gen_random_uuid encode decode
num_nulls num_nonnulls nullif coalesce greatest least
similar_to_escape like_escape overlaps is_normalized
` +
	// Schema metadata, as drivers, ORMs and psql read it: the same for every
	// tenant, and the system relations it comes from are readable too.
	`
format_type pg_get_expr pg_get_indexdef pg_get_constraintdef pg_get_viewdef pg_get_triggerdef
pg_get_ruledef pg_get_functiondef pg_get_function_arguments pg_get_function_identity_arguments
pg_get_function_result pg_get_function_sqlbody pg_get_partkeydef pg_get_partition_constraintdef
pg_get_statisticsobjdef pg_get_statisticsobjdef_columns pg_get_statisticsobjdef_expressions
pg_get_serial_sequence pg_get_userbyid pg_get_keywords pg_describe_object pg_identify_object
pg_identify_object_as_address pg_relation_is_updatable pg_column_is_updatable
pg_index_column_has_property pg_index_has_property pg_indexam_has_property pg_options_to_table
pg_table_is_visible pg_type_is_visible pg_function_is_visible pg_operator_is_visible
pg_opclass_is_visible pg_opfamily_is_visible pg_collation_is_visible pg_conversion_is_visible
pg_statistics_obj_is_visible pg_ts_config_is_visible pg_ts_dict_is_visible
pg_ts_parser_is_visible pg_ts_template_is_visible pg_my_temp_schema pg_is_other_temp_schema
pg_encoding_to_char pg_char_to_encoding pg_encoding_max_length pg_typeof pg_column_size
pg_size_pretty pg_size_bytes pg_is_in_recovery pg_postmaster_start_time pg_conf_load_time
pg_jit_available pg_has_role has_table_privilege has_column_privilege
has_any_column_privilege has_schema_privilege has_database_privilege has_function_privilege
has_sequence_privilege has_type_privilege has_language_privilege
has_foreign_data_wrapper_privilege has_server_privilege has_tablespace_privilege
has_parameter_privilege obj_description col_description shobj_description to_regclass
to_regtype to_regproc to_regprocedure to_regnamespace to_regrole to_regoper
to_regoperator to_regcollation to_regtypemod current_database current_schema
current_schemas version current_setting oidvectortypes pg_partition_ancestors pg_partition_root
pg_partition_tree pg_get_publication_tables array_to_string pg_get_triggerdef pg_relation_is_publishable
`)

// refusedClasses explains, for well-known dangerous functions, why they are
// not on the allowlist. It only improves the message: a function that is in
// neither list is refused all the same. A name matches a class when it is
// listed or starts with a listed prefix ending in "*".
var refusedClasses = []struct {
	why   string
	names []string
}{
	{"it runs SQL text, which the proxy never sees and cannot scope",
		strings.Fields("query_to_xml* query_to_xmlschema cursor_to_xml* table_to_xml* schema_to_xml* database_to_xml* dblink* ts_stat ts_rewrite")},
	{"it reads the server's files or large objects, outside every tenant's rows",
		strings.Fields("pg_read_file pg_read_binary_file pg_ls_* pg_stat_file lo_* loread lowrite")},
	{whySequences,
		strings.Fields("nextval currval setval lastval")},
	{"it changes server settings, which the proxy controls",
		strings.Fields("set_config")},
	{whySizes,
		strings.Fields("pg_relation_size pg_table_size pg_indexes_size pg_total_relation_size pg_database_size pg_tablespace_size pg_sequence_last_value pg_stat_* pg_relation_filenode pg_relation_filepath")},
	{"it acts on the server or on other sessions, which belong to every tenant",
		strings.Fields("pg_sleep* pg_terminate_backend pg_cancel_backend pg_reload_conf pg_rotate_logfile pg_advisory_* pg_try_advisory_*")},
	{"the channel names on the connection are the proxy's per-tenant names, not yours; keep track of the channels your session LISTENs on",
		strings.Fields("pg_listening_channels")},
	{whyServerState,
		strings.Fields("pg_* txid_*")},
}

// The refusal classes an unscoped session is exempt from (modes.go).
const (
	whySequences   = "sequences are relations outside the tenant catalog, shared by every tenant"
	whySizes       = "it reveals how much data every tenant together holds"
	whyServerState = "it reads server state shared by every tenant (statistics, sessions, transactions, files)"
)

// whyRefused returns the class explanation for a refused function name, or "".
func whyRefused(name string) string {
	for _, c := range refusedClasses {
		for _, n := range c.names {
			if p, ok := strings.CutSuffix(n, "*"); ok && strings.HasPrefix(name, p) || n == name {
				return c.why
			}
		}
	}
	return ""
}

func toSet(words string) map[string]bool {
	m := map[string]bool{}
	for _, w := range strings.Fields(words) {
		m[w] = true
	}
	return m
}

// funcCall checks a call against the allowlist and walks its arguments.
func (w *walker) funcCall(f *pg.FuncCall) {
	names := f.GetFuncname()
	if len(names) == 0 || len(names) > 2 {
		w.fail(refusef("unsupported function call %s", qualified(names)))
		return
	}
	if isNotify(names) {
		w.notifyCall(f)
		w.exprs(f.GetArgs())
		return
	}
	if !w.functionAllowed(f) {
		name, short := qualified(names), names[len(names)-1].GetString_().GetSval()
		hint := "only built-in functions that compute on their arguments, and schema metadata functions, are allowed, because others may run SQL text or read " +
			"outside the tenant's rows; a function known to be safe can be allowed with: tenantproxy catalog allow-function " + name
		if why := whyRefused(short); why != "" {
			hint = short + " is refused because " + why
		}
		w.fail(&Rejection{Code: codeRefused, Reason: "function " + name + " is not allowed", Hint: hint,
			Position: int(f.GetLocation()) + 1})
		return
	}
	if short := names[len(names)-1].GetString_().GetSval(); short == "current_setting" {
		w.settingRead(f)
	}
	w.exprs(f.GetArgs())
	w.exprs(f.GetAggOrder())
	w.expr(f.GetAggFilter())
	w.windowDef(f.GetOver())
}

// isNotify reports whether a call names pg_catalog.pg_notify.
func isNotify(names []*pg.Node) bool {
	short := names[len(names)-1].GetString_().GetSval()
	return short == "pg_notify" && (len(names) == 1 || names[0].GetString_().GetSval() == "pg_catalog")
}

// functionAllowed reports whether a call names a function on the built-in
// list or allowed by the catalog. The catalog allows built-ins by bare name
// and other functions as schema.name; an unqualified call of one of those is
// qualified in the output, so Postgres cannot resolve it to a pg_catalog
// function of the same name instead.
func (w *walker) functionAllowed(f *pg.FuncCall) bool {
	names := f.GetFuncname()
	short := names[len(names)-1].GetString_().GetSval()
	schema := ""
	if len(names) == 2 {
		schema = names[0].GetString_().GetSval()
	}
	switch {
	case schema == "" || schema == "pg_catalog":
		if allowedFunctions[short] || w.snap.FunctionAllowed(short) {
			return true
		}
	default:
		return w.snap.FunctionAllowed(schema + "." + short)
	}
	if schema != "" || whyRefused(short) != "" {
		return false
	}
	for _, s := range w.cfg.SearchPath {
		if w.snap.FunctionAllowed(s + "." + short) {
			f.Funcname = []*pg.Node{pg.MakeStrNode(s), pg.MakeStrNode(short)}
			w.changed = true
			return true
		}
	}
	return false
}

// settingRead lets current_setting read a setting named by a constant,
// never one of the proxy's own.
func (w *walker) settingRead(f *pg.FuncCall) {
	args := f.GetArgs()
	name, ok := "", len(args) > 0
	if ok {
		name, ok = w.constantText(args[0].GetAConst())
	}
	switch {
	case !ok:
		w.fail(refuseHint("name the setting as a string constant", "current_setting must name its setting as a constant"))
	case strings.HasPrefix(strings.ToLower(name), "tenantproxy"):
		w.fail(refuseHint("the proxy's settings are not readable by tenants", "setting %s is not readable through the proxy", name))
	}
}
