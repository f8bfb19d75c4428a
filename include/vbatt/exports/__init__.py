"""Files for partners: the warehouse's figures per partner and period, in their formats."""
