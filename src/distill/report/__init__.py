from distill.report.summary import gap_recovered, print_summary, summary_table, write_summary

__all__ = ["gap_recovered", "print_summary", "summary_table", "write_summary"]
