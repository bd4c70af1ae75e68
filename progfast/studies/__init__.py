"Studies: the comparison harness and the ENTR, Khor and Mkrtchyan reproductions"
