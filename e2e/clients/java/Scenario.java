// pgjdbc scenario of tenantproxy's client compatibility matrix (see
// e2e/clients_test.go). prepareThreshold=-1 makes every statement a named
// server-side prepared statement from its first execution.

import java.sql.*;
import java.util.*;

public class Scenario {
    static void check(boolean cond, String step, Object detail) {
        if (!cond) {
            System.out.println("FAIL " + step + ": " + detail);
            System.exit(1);
        }
        System.out.println("ok " + step);
    }

    static List<String> column(ResultSet rs, String name) throws SQLException {
        List<String> out = new ArrayList<>();
        while (rs.next()) out.add(rs.getString(name));
        rs.close();
        return out;
    }

    public static void main(String[] args) throws Exception {
        Map<String, String> env = System.getenv();
        String tag = env.get("TP_TAG");
        int tenant = Integer.parseInt(env.get("TP_TENANT"));
        long other = Long.parseLong(env.get("TP_OTHER_ID"));
        String url = "jdbc:postgresql://" + env.get("TP_HOST") + ":" + env.get("TP_PORT") + "/" + env.get("TP_DB")
                + "?sslmode=disable&prepareThreshold=-1";
        Properties props = new Properties();
        props.setProperty("user", env.get("TP_USER"));
        props.setProperty("password", env.get("TP_PASSWORD"));

        try (Connection c = DriverManager.getConnection(url, props)) {
            DatabaseMetaData md = c.getMetaData();
            System.out.println("version: pgjdbc " + md.getDriverVersion() + ", Java " + System.getProperty("java.version"));
            List<String> tables = column(md.getTables(null, "public", "%", new String[] {"TABLE"}), "TABLE_NAME");
            check(tables.contains("accounts") && tables.contains("notes"), "introspect tables", tables);
            List<String> cols = column(md.getColumns(null, "public", "accounts", null), "COLUMN_NAME");
            check(cols.equals(List.of("id", "tenant_id", "name", "created_at")), "introspect columns", cols);
            List<String> pk = column(md.getPrimaryKeys(null, "public", "accounts"), "COLUMN_NAME");
            check(pk.equals(List.of("id")), "introspect primary key", pk);

            long aid, nid;
            try (PreparedStatement ps = c.prepareStatement("INSERT INTO accounts (name) VALUES (?) RETURNING id, tenant_id")) {
                ps.setString(1, tag);
                ResultSet rs = ps.executeQuery();
                rs.next();
                aid = rs.getLong(1);
                check(rs.getInt(2) == tenant, "insert fills the tenant", rs.getInt(2));
            }
            try (PreparedStatement ps = c.prepareStatement("INSERT INTO notes (account_id, body) VALUES (?, ?)",
                    Statement.RETURN_GENERATED_KEYS)) {
                ps.setLong(1, aid);
                ps.setString(2, "hello");
                ps.executeUpdate();
                ResultSet rs = ps.getGeneratedKeys();
                rs.next();
                nid = rs.getLong("id");
            }

            try (PreparedStatement ps = c.prepareStatement(
                    "SELECT a.name, n.body FROM accounts a JOIN notes n ON n.account_id = a.id WHERE a.id = ?")) {
                ps.setLong(1, aid);
                ResultSet rs = ps.executeQuery();
                check(rs.next() && rs.getString(1).equals(tag) && rs.getString(2).equals("hello") && !rs.next(),
                        "join reads back", aid);
            }

            try (PreparedStatement ps = c.prepareStatement("UPDATE notes SET stars = stars + 1 WHERE id = ?")) {
                ps.setLong(1, nid);
                int n = ps.executeUpdate();
                check(n == 1, "update", n);
            }

            c.setAutoCommit(false);
            try (PreparedStatement ps = c.prepareStatement("INSERT INTO accounts (name) VALUES (?)")) {
                ps.setString(1, tag + "-rollback");
                ps.executeUpdate();
            }
            Savepoint sp = c.setSavepoint();
            try (Statement st = c.createStatement()) {
                st.executeQuery("SELECT * FROM secrets");
                check(false, "refusal inside a transaction", "no error");
            } catch (SQLException e) {
                check("42501".equals(e.getSQLState()), "refusal inside a transaction", e.getSQLState());
            }
            c.rollback(sp);
            c.rollback();
            c.setAutoCommit(true);
            try (PreparedStatement ps = c.prepareStatement("SELECT count(*) FROM accounts WHERE name = ?")) {
                ps.setString(1, tag + "-rollback");
                ResultSet rs = ps.executeQuery();
                rs.next();
                check(rs.getLong(1) == 0, "rollback", rs.getLong(1));
            }

            try (PreparedStatement ps = c.prepareStatement("SELECT name FROM accounts WHERE id = ?")) {
                for (int i = 1; i <= 5; i++) {
                    ps.setLong(1, aid);
                    List<String> got = column(ps.executeQuery(), "name");
                    check(got.equals(List.of(tag)), "prepared query, run " + i, got);
                }
            }

            try (PreparedStatement ps = c.prepareStatement("INSERT INTO notes (account_id, body) VALUES (?, ?)")) {
                for (int i = 1; i <= 3; i++) {
                    ps.setLong(1, aid);
                    ps.setString(2, "batched " + i);
                    ps.addBatch();
                }
                int[] counts = ps.executeBatch();
                check(counts.length == 3, "batch insert", Arrays.toString(counts));
            }
            try (PreparedStatement ps = c.prepareStatement("DELETE FROM notes WHERE account_id = ? AND body LIKE 'batched%'")) {
                ps.setLong(1, aid);
                int n = ps.executeUpdate();
                check(n == 3, "batched rows are the tenant's", n);
            }

            try (PreparedStatement ps = c.prepareStatement("SELECT * FROM accounts WHERE id = ?")) {
                ps.setLong(1, other);
                check(!ps.executeQuery().next(), "other tenant's row is not seen", other);
            }
            try (PreparedStatement ps = c.prepareStatement("UPDATE accounts SET name = ? WHERE id = ?")) {
                ps.setString(1, "stolen");
                ps.setLong(2, other);
                int n = ps.executeUpdate();
                check(n == 0, "other tenant's row is not updated", n);
            }
            try (PreparedStatement ps = c.prepareStatement("DELETE FROM notes WHERE account_id = ?")) {
                ps.setLong(1, other);
                int n = ps.executeUpdate();
                check(n == 0, "other tenant's notes are not deleted", n);
            }
            try (Statement st = c.createStatement()) {
                List<String> ts = column(st.executeQuery("SELECT DISTINCT tenant_id FROM accounts"), "tenant_id");
                check(ts.equals(List.of(String.valueOf(tenant))), "only its own tenant", ts);
            }

            try (PreparedStatement ps = c.prepareStatement("DELETE FROM notes WHERE id = ?")) {
                ps.setLong(1, nid);
                int n = ps.executeUpdate();
                check(n == 1, "delete", n);
            }

            try (Statement st = c.createStatement()) {
                st.executeQuery("SELECT * FROM secrets");
                check(false, "uncatalogued table refused", "no error");
            } catch (SQLException e) {
                check("42501".equals(e.getSQLState()) && e.getMessage().contains("tenantproxy:"),
                        "uncatalogued table refused", e.getMessage());
            }
            try (Statement st = c.createStatement()) {
                ResultSet rs = st.executeQuery("SELECT 1");
                check(rs.next() && rs.getInt(1) == 1, "session usable after refusal", "");
            }
        }
    }
}
